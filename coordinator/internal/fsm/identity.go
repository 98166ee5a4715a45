package fsm

import (
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"sort"
)

// The trust-on-first-use commands of agent enrollment.
const (
	OpIdentityEnroll Op = "identity_enroll"
	OpIdentityReset  Op = "identity_reset"
)

// Identity is the trust-on-first-use record of an enrolled instance. The
// instance identity document carries no nonce and no expiry, so this record
// is what stops a copied document from enrolling a second time.
type Identity struct {
	InstanceID string `json:"instance_id"`
	// NonceSHA256 is the hex SHA-256 of the random nonce the agent sent at
	// its first enrollment and keeps beside its key; the nonce itself never
	// reaches the log.
	NonceSHA256 string `json:"nonce_sha256"`
	// PendingTimeMS is the document's pendingTime (Unix ms): a stop and
	// start of the instance makes it newer.
	PendingTimeMS int64 `json:"pending_time_ms"`
	// EnrolledAtMS is stamped by the FSM from the command's time.
	EnrolledAtMS int64 `json:"enrolled_at_ms,omitempty"`
}

type identityResetBody struct {
	InstanceID string `json:"instance_id"`
}

// IdentityEnroll records (or renews) an instance's enrollment. The FSM
// applies EnrollmentAllowed again, so of two racing enrollments of one id
// only one that the rule accepts is recorded.
func IdentityEnroll(id Identity) Command {
	id.EnrolledAtMS = 0 // the FSM stamps it
	return newCommand(OpIdentityEnroll, id)
}

// IdentityReset forgets an instance's enrollment, so its next enrollment is
// a first one again (`instances reset-identity ID`).
func IdentityReset(instanceID string) Command {
	return newCommand(OpIdentityReset, identityResetBody{InstanceID: instanceID})
}

// EnrollmentAllowed is the trust-on-first-use rule. An instance with no
// record may enroll. A later enrollment of the same id is accepted only
// with the same nonce (hashes compared in constant time) or a newer
// pendingTime (the instance was stopped and started); an operator's reset
// removes the record. prev is the current record or nil.
func EnrollmentAllowed(prev *Identity, next Identity) bool {
	if prev == nil {
		return true
	}
	if next.PendingTimeMS > prev.PendingTimeMS {
		return true
	}
	a, errA := hex.DecodeString(prev.NonceSHA256)
	b, errB := hex.DecodeString(next.NonceSHA256)
	return errA == nil && errB == nil && len(a) == 32 && subtle.ConstantTimeCompare(a, b) == 1
}

// ValidateIdentity checks a record's fields, naming the field.
func ValidateIdentity(id Identity) *Error {
	if err := ValidInstanceID(id.InstanceID); err != nil {
		return &Error{Kind: err.Kind, Msg: "instance_" + err.Msg}
	}
	if len(id.NonceSHA256) != 64 {
		return invalidf("nonce_sha256: must be 64 hex digits, got %d characters", len(id.NonceSHA256))
	}
	for _, c := range id.NonceSHA256 {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return invalidf("nonce_sha256: must be lower-case hex digits")
		}
	}
	switch {
	case id.PendingTimeMS <= 0:
		return invalidf("pending_time_ms (%d): must be > 0", id.PendingTimeMS)
	case id.EnrolledAtMS < 0:
		return invalidf("enrolled_at_ms (%d): must be >= 0", id.EnrolledAtMS)
	}
	return nil
}

func (f *FSM) identityEnroll(c Command) (*Result, *Error) {
	var id Identity
	if err := c.decodeJSON(&id); err != nil {
		return nil, err
	}
	if err := ValidateIdentity(id); err != nil {
		return nil, err
	}
	var prev *Identity
	if p, ok := f.s.identities[id.InstanceID]; ok {
		prev = &p
	}
	if !EnrollmentAllowed(prev, id) {
		return nil, conflictf("instance %q: already enrolled; a new enrollment needs the first one's nonce, a newer pendingTime, or an operator's reset-identity", id.InstanceID)
	}
	if prev != nil && prev.PendingTimeMS > id.PendingTimeMS {
		id.PendingTimeMS = prev.PendingTimeMS // a same-nonce renewal never moves time back
	}
	id.EnrolledAtMS = c.AtMS
	f.s.identities[id.InstanceID] = id
	return &Result{}, nil
}

func (f *FSM) identityReset(c Command) (*Result, *Error) {
	var b identityResetBody
	if err := c.decodeJSON(&b); err != nil {
		return nil, err
	}
	if err := ValidInstanceID(b.InstanceID); err != nil {
		return nil, &Error{Kind: err.Kind, Msg: "instance_" + err.Msg}
	}
	if _, ok := f.s.identities[b.InstanceID]; !ok {
		return nil, notFoundf("instance %q: no enrollment recorded", b.InstanceID)
	}
	delete(f.s.identities, b.InstanceID)
	return &Result{}, nil
}

// Identity returns the enrollment record of an instance.
func (f *FSM) Identity(instanceID string) (Identity, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	id, ok := f.s.identities[instanceID]
	return id, ok
}

// Identities returns every enrollment record, by instance id.
func (f *FSM) Identities() []Identity {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := make([]Identity, 0, len(f.s.identities))
	for _, id := range f.s.identities {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].InstanceID < out[j].InstanceID })
	return out
}

func cloneIdentities(m map[string]Identity) map[string]Identity {
	out := make(map[string]Identity, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func encodeIdentities(m map[string]Identity) []Identity {
	var out []Identity
	for _, k := range sortedKeys(m) {
		out = append(out, m[k])
	}
	return out
}

// checkIdentities validates the identities of a snapshot an operator
// restores: each record's fields, and no instance listed twice.
func checkIdentities(list []Identity) error {
	seen := make(map[string]bool, len(list))
	for i, id := range list {
		if err := ValidateIdentity(id); err != nil {
			return fmt.Errorf("identities[%d]: %v", i, err)
		}
		if seen[id.InstanceID] {
			return fmt.Errorf("identities[%d] (%q): listed twice", i, id.InstanceID)
		}
		seen[id.InstanceID] = true
	}
	return nil
}
