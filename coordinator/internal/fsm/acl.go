package fsm

import (
	"fmt"
	"sort"
	"time"

	"github.com/shoal-dev/shoal/coordinator/internal/acl"
)

// The ACL commands.
const (
	OpACLBootstrap Op = "acl_bootstrap"
	OpTokenCreate  Op = "token_create"
	OpTokenDelete  Op = "token_delete"
)

// MaxTokens bounds the tokens a cluster keeps, expired ones included.
const MaxTokens = 1000

// aclState is the ACL part of the state. Its zero value is a cluster whose
// ACLs are not bootstrapped; the maps are made on first write.
type aclState struct {
	bootstrapped bool
	tokens       map[string]acl.Token // by accessor id
	byHash       map[string]string    // secret hash -> accessor id
	byName       map[string]string    // name -> accessor id
}

func (a *aclState) clone() aclState {
	c := aclState{bootstrapped: a.bootstrapped}
	for _, t := range a.tokens {
		c.add(t)
	}
	return c
}

func (a *aclState) add(t acl.Token) {
	if a.tokens == nil {
		a.tokens, a.byHash, a.byName = map[string]acl.Token{}, map[string]string{}, map[string]string{}
	}
	a.tokens[t.AccessorID] = t
	a.byHash[t.SecretHash] = t.AccessorID
	a.byName[t.Name] = t.AccessorID
}

func (a *aclState) remove(accessorID string) {
	t, ok := a.tokens[accessorID]
	if !ok {
		return
	}
	delete(a.tokens, accessorID)
	delete(a.byHash, t.SecretHash)
	delete(a.byName, t.Name)
}

// tokenBody is a token to create as it travels in the log: the secret's
// hash, never the secret, and a TTL the FSM turns into an expiry from the
// leader's stamped time.
type tokenBody struct {
	AccessorID string     `json:"accessor_id"`
	Name       string     `json:"name"`
	Policy     acl.Policy `json:"policy"`
	SecretHash string     `json:"secret_hash"`
	TTLMS      int64      `json:"ttl_ms,omitempty"`
}

type tokenDeleteBody struct {
	AccessorID string `json:"accessor_id"`
}

func newTokenBody(s acl.Spec) tokenBody {
	return tokenBody{AccessorID: s.AccessorID, Name: s.Name, Policy: s.Policy, SecretHash: s.SecretHash, TTLMS: s.TTL.Milliseconds()}
}

// ACLBootstrap makes the cluster's first token, which must have policy
// admin. It is accepted once per cluster; a second is refused with "ACLs
// are already bootstrapped".
func ACLBootstrap(s acl.Spec) Command { return newCommand(OpACLBootstrap, newTokenBody(s)) }

// TokenCreate adds a token; ACLs must be bootstrapped.
func TokenCreate(s acl.Spec) Command { return newCommand(OpTokenCreate, newTokenBody(s)) }

// TokenDelete removes the token with this accessor id.
func TokenDelete(accessorID string) Command {
	return newCommand(OpTokenDelete, tokenDeleteBody{AccessorID: accessorID})
}

func (f *FSM) createToken(c Command, bootstrap bool) (*Result, *Error) {
	var b tokenBody
	if err := c.decodeJSON(&b); err != nil {
		return nil, err
	}
	if b.TTLMS < 0 || b.TTLMS > acl.MaxTTL.Milliseconds() {
		return nil, invalidf("ttl_ms (%d): must be 0 (no expiry) up to %d", b.TTLMS, acl.MaxTTL.Milliseconds())
	}
	spec := acl.Spec{AccessorID: b.AccessorID, Name: b.Name, Policy: b.Policy, SecretHash: b.SecretHash, TTL: time.Duration(b.TTLMS) * time.Millisecond}
	if err := spec.Validate(); err != nil {
		return nil, invalidf("%v", err)
	}
	if c.AtMS <= 0 {
		return nil, invalidf("at_ms: required (the leader stamps it; a token's times come from it)")
	}
	a := &f.s.acl
	switch {
	case bootstrap && a.bootstrapped:
		return nil, conflictf("ACLs are already bootstrapped")
	case bootstrap && spec.Policy != acl.PolicyAdmin:
		return nil, invalidf("policy (%q): the bootstrap token must be admin", spec.Policy)
	case !bootstrap && !a.bootstrapped:
		return nil, conflictf("ACLs are not bootstrapped: run acl bootstrap first")
	case len(a.tokens) >= MaxTokens:
		return nil, conflictf("tokens: %d exist, the most a cluster keeps; delete one first", len(a.tokens))
	}
	if _, ok := a.byName[spec.Name]; ok {
		return nil, existsf("token %q already exists", spec.Name)
	}
	if _, ok := a.tokens[spec.AccessorID]; ok {
		return nil, existsf("accessor_id %q: already in use", spec.AccessorID)
	}
	if _, ok := a.byHash[spec.SecretHash]; ok {
		return nil, existsf("secret_hash: already in use")
	}
	t := acl.Token{AccessorID: spec.AccessorID, Name: spec.Name, Policy: spec.Policy, SecretHash: spec.SecretHash, CreatedAt: time.UnixMilli(c.AtMS).UTC()}
	if b.TTLMS > 0 {
		t.ExpiresAt = time.UnixMilli(c.AtMS + b.TTLMS).UTC()
	}
	if err := t.Validate(); err != nil {
		return nil, invalidf("%v", err)
	}
	a.add(t)
	if bootstrap {
		a.bootstrapped = true
	}
	return &Result{}, nil
}

func (f *FSM) deleteToken(c Command) (*Result, *Error) {
	var b tokenDeleteBody
	if err := c.decodeJSON(&b); err != nil {
		return nil, err
	}
	a := &f.s.acl
	t, ok := a.tokens[b.AccessorID]
	if !ok {
		return nil, notFoundf("token %q: unknown accessor id", clipID(b.AccessorID))
	}
	// Deleting the last admin token would lock every operator out for
	// good: bootstrap works once.
	if t.Policy == acl.PolicyAdmin {
		now := time.UnixMilli(c.AtMS)
		others := 0
		for _, o := range a.tokens {
			if o.AccessorID != t.AccessorID && o.Policy == acl.PolicyAdmin && !o.Expired(now) {
				others++
			}
		}
		if others == 0 {
			return nil, conflictf("token %q is the last admin token; create another admin token before deleting it", t.Name)
		}
	}
	a.remove(t.AccessorID)
	return &Result{}, nil
}

func clipID(s string) string {
	if len(s) > acl.AccessorIDLen {
		return s[:acl.AccessorIDLen] + "..."
	}
	return s
}

// ACLBootstrapped reports whether acl bootstrap has run on this cluster.
func (f *FSM) ACLBootstrapped() bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.s.acl.bootstrapped
}

// TokenBySecretHash returns the token whose secret hashes to hash
// (acl.HashSecret). Expiry is the caller's to check.
func (f *FSM) TokenBySecretHash(hash string) (acl.Token, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	id, ok := f.s.acl.byHash[hash]
	if !ok {
		return acl.Token{}, false
	}
	return f.s.acl.tokens[id], true
}

// Token returns the token with this accessor id.
func (f *FSM) Token(accessorID string) (acl.Token, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	t, ok := f.s.acl.tokens[accessorID]
	return t, ok
}

// Tokens returns every token, by name.
func (f *FSM) Tokens() []acl.Token {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]acl.Token, 0, len(f.s.acl.tokens))
	for _, t := range f.s.acl.tokens {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// wireACL is the ACL part of a snapshot; absent before bootstrap, so a
// snapshot of a cluster without ACLs reads as it did before they existed.
type wireACL struct {
	Bootstrapped bool        `json:"bootstrapped"`
	Tokens       []wireToken `json:"tokens,omitempty"`
}

type wireToken struct {
	AccessorID  string     `json:"accessor_id"`
	Name        string     `json:"name"`
	Policy      acl.Policy `json:"policy"`
	SecretHash  string     `json:"secret_hash"`
	CreatedAtMS int64      `json:"created_at_ms"`
	ExpiresAtMS int64      `json:"expires_at_ms,omitempty"`
}

func encodeACL(a *aclState) *wireACL {
	if !a.bootstrapped && len(a.tokens) == 0 {
		return nil
	}
	w := &wireACL{Bootstrapped: a.bootstrapped}
	for _, id := range sortedKeys(a.tokens) {
		t := a.tokens[id]
		wt := wireToken{AccessorID: t.AccessorID, Name: t.Name, Policy: t.Policy, SecretHash: t.SecretHash, CreatedAtMS: t.CreatedAt.UnixMilli()}
		if !t.ExpiresAt.IsZero() {
			wt.ExpiresAtMS = t.ExpiresAt.UnixMilli()
		}
		w.Tokens = append(w.Tokens, wt)
	}
	return w
}

func (w wireToken) token() acl.Token {
	t := acl.Token{AccessorID: w.AccessorID, Name: w.Name, Policy: w.Policy, SecretHash: w.SecretHash, CreatedAt: time.UnixMilli(w.CreatedAtMS).UTC()}
	if w.CreatedAtMS == 0 {
		t.CreatedAt = time.Time{}
	}
	if w.ExpiresAtMS != 0 {
		t.ExpiresAt = time.UnixMilli(w.ExpiresAtMS).UTC()
	}
	return t
}

// decodeACL reads w leniently, as raft's own snapshots are read.
func decodeACL(w *wireACL) aclState {
	var a aclState
	if w == nil {
		return a
	}
	a.bootstrapped = w.Bootstrapped
	for _, wt := range w.Tokens {
		a.add(wt.token())
	}
	return a
}

// checkACL checks the ACL part of an operator's snapshot: at most
// MaxTokens, each valid, none sharing an accessor id, name or secret hash,
// and tokens only once bootstrapped.
func checkACL(w *wireACL) error {
	if w == nil {
		return nil
	}
	if len(w.Tokens) > MaxTokens {
		return fmt.Errorf("acl.tokens: %d, more than %d", len(w.Tokens), MaxTokens)
	}
	if len(w.Tokens) > 0 && !w.Bootstrapped {
		return fmt.Errorf("acl.tokens: present, but bootstrapped is false")
	}
	ids, names, hashes := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for i, wt := range w.Tokens {
		t := wt.token()
		if err := t.Validate(); err != nil {
			return fmt.Errorf("acl.tokens[%d]: %v", i, err)
		}
		switch {
		case ids[t.AccessorID]:
			return fmt.Errorf("acl.tokens[%d]: accessor_id %q listed twice", i, t.AccessorID)
		case names[t.Name]:
			return fmt.Errorf("acl.tokens[%d]: name %q listed twice", i, t.Name)
		case hashes[t.SecretHash]:
			return fmt.Errorf("acl.tokens[%d] (%q): secret_hash listed twice", i, t.Name)
		}
		ids[t.AccessorID], names[t.Name], hashes[t.SecretHash] = true, true, true
	}
	return nil
}
