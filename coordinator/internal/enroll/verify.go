package enroll

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
)

// Config is enrollment's configuration; flags bind to its fields.
type Config struct {
	// TrustFiles are the --iid-trust files (see LoadTrust).
	TrustFiles []string
	// Accounts is --iid-accounts; empty means the account of the
	// coordinator's own credentials (ResolveAccounts).
	Accounts []string
	// Region is the coordinator's region; documents of another are
	// refused.
	Region string
	// AgentCertTTL is --agent-cert-ttl, the lifetime of an agent
	// certificate, at most pki.MaxAgentValidity.
	AgentCertTTL time.Duration
	// Lookup tunes the DescribeAutoScalingInstances batching.
	Lookup LookupConfig
}

// DefaultConfig has no trust files and no region: both must be given.
func DefaultConfig() Config {
	return Config{AgentCertTTL: 24 * time.Hour, Lookup: DefaultLookupConfig()}
}

// Validate checks the fields, naming the flag and the reason. It reads no
// file: LoadTrust does.
func (c Config) Validate() error {
	if len(c.TrustFiles) == 0 {
		return errors.New("iid-trust: at least one trusted certificate file is required for agent enrollment")
	}
	for i, f := range c.TrustFiles {
		if strings.TrimSpace(f) == "" {
			return fmt.Errorf("iid-trust[%d]: empty file name", i)
		}
	}
	for _, a := range c.Accounts {
		if !accountRE.MatchString(a) {
			return fmt.Errorf("iid-accounts (%q): an account id is 12 digits", a)
		}
	}
	if c.Region == "" {
		return errors.New("region: required (documents of other regions are refused)")
	}
	if err := ValidRegion(c.Region); err != nil {
		return fmt.Errorf("region: %w", err)
	}
	if err := checkTTL(c.AgentCertTTL); err != nil {
		return err
	}
	return c.Lookup.Validate()
}

// State is what Verify reads from the replicated state; FSMState adapts
// *fsm.FSM.
type State interface {
	// FleetForGroup names the fleet that drives an Auto Scaling group.
	FleetForGroup(group string) (fleet string, ok bool)
	// Identity is the trust-on-first-use record of an instance.
	Identity(instanceID string) (fsm.Identity, bool)
}

// FSMState is State over the coordinator's FSM.
type FSMState struct{ FSM *fsm.FSM }

// FleetForGroup implements State.
func (s FSMState) FleetForGroup(group string) (string, bool) {
	for _, f := range s.FSM.Fleets() {
		if f.Asg == group {
			return f.Name, true
		}
	}
	return "", false
}

// Identity implements State.
func (s FSMState) Identity(id string) (fsm.Identity, bool) { return s.FSM.Identity(id) }

// Evidence is what an agent sends to enroll.
type Evidence struct {
	// Document and Signature are the IMDS bytes exactly as served.
	Document  []byte
	Signature []byte
	// Nonce is the agent's random value, kept beside its key; a later
	// enrollment with the same nonce is the same agent.
	Nonce []byte
	// Peer is the TCP peer address of the connection.
	Peer netip.Addr
}

// Enrollment is a verified enrollment. The caller commits
// fsm.IdentityEnroll(Record) and then issues the certificate.
type Enrollment struct {
	Document Document
	Fleet    string
	Group    string
	Record   fsm.Identity
}

// Verifier checks enrollments. It is safe for concurrent use.
type Verifier struct {
	region   string
	trust    *TrustSet
	accounts []string
	lookup   InstanceLookup
	state    State
	denied   *prometheus.CounterVec
	now      func() time.Time
}

// Deps are a Verifier's collaborators.
type Deps struct {
	Trust *TrustSet
	// Accounts are the accepted account ids (ResolveAccounts).
	Accounts []string
	Lookup   InstanceLookup
	State    State
	// Denied counts refusals (NewDeniedCounter); nil counts nothing.
	Denied *prometheus.CounterVec
	// Now is the clock for certificate validity; nil is time.Now.
	Now func() time.Time
}

// NewVerifier returns a Verifier for cfg.
func NewVerifier(cfg Config, d Deps) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	switch {
	case d.Trust == nil || len(d.Trust.certs) == 0:
		return nil, errors.New("iid-trust: no trusted certificates loaded")
	case len(d.Accounts) == 0:
		return nil, errors.New("iid-accounts: no account to accept (give --iid-accounts or credentials STS can name)")
	case d.Lookup == nil || d.State == nil:
		return nil, errors.New("enroll: Lookup and State are required")
	}
	for _, a := range d.Accounts {
		if !accountRE.MatchString(a) {
			return nil, fmt.Errorf("iid-accounts (%q): an account id is 12 digits", a)
		}
	}
	if !slices.Contains(d.Trust.Regions(), cfg.Region) {
		return nil, fmt.Errorf("iid-trust: no certificate for region %s, so no agent could enroll (have %s)", cfg.Region, strings.Join(d.Trust.Regions(), ", "))
	}
	now := d.Now
	if now == nil {
		now = time.Now
	}
	return &Verifier{region: cfg.Region, trust: d.Trust, accounts: slices.Clone(d.Accounts), lookup: d.Lookup, state: d.State, denied: d.Denied, now: now}, nil
}

// Lifecycle states of an instance that is pending or running in its group.
var acceptedStates = []string{"Pending", "Pending:Wait", "Pending:Proceed", "InService", "EnteringStandby", "Standby"}

// Verify checks every rule of enrollment, cheapest first, so a forged
// request costs no AWS call: the signature over the exact bytes, the
// region, the account, the peer address, the trust-on-first-use record and
// last the instance's group. A refusal is a *DeniedError and is counted;
// malformed input wraps ErrInvalid; a failed lookup is returned as it is.
func (v *Verifier) Verify(ctx context.Context, ev Evidence) (*Enrollment, error) {
	e, err := v.verify(ctx, ev)
	if r, ok := ReasonOf(err); ok && v.denied != nil {
		v.denied.WithLabelValues(string(r)).Inc()
	}
	return e, err
}

func (v *Verifier) verify(ctx context.Context, ev Evidence) (*Enrollment, error) {
	if len(ev.Nonce) < MinNonceSize || len(ev.Nonce) > MaxNonceSize {
		return nil, fmt.Errorf("%w: nonce: %d bytes, must be %d to %d", ErrInvalid, len(ev.Nonce), MinNonceSize, MaxNonceSize)
	}
	d, err := CheckSignature(ev.Document, ev.Signature, v.trust, v.now())
	if err != nil {
		return nil, err
	}
	if d.Region != v.region {
		return nil, deny(ReasonWrongRegion, "the document is from region %s; this coordinator serves %s", d.Region, v.region)
	}
	if !slices.Contains(v.accounts, d.AccountID) {
		return nil, deny(ReasonUnknownAccount, "account %s is not in --iid-accounts", d.AccountID)
	}
	ip, _ := netip.ParseAddr(d.PrivateIP) // parseDocument checked it
	if !ev.Peer.IsValid() || ip.Unmap() != ev.Peer.Unmap() {
		return nil, deny(ReasonIPMismatch, "the document's privateIp %s is not this connection's address %s; bind the agent's connection to its private IP", ip, ev.Peer)
	}
	sum := sha256.Sum256(ev.Nonce)
	rec := fsm.Identity{InstanceID: d.InstanceID, NonceSHA256: hex.EncodeToString(sum[:]), PendingTimeMS: d.PendingTime.UnixMilli()}
	var prev *fsm.Identity
	if p, ok := v.state.Identity(d.InstanceID); ok {
		prev = &p
	}
	if !fsm.EnrollmentAllowed(prev, rec) {
		return nil, deny(ReasonAlreadyEnrolled, "instance %s has enrolled before; enroll with its first nonce, or an operator runs `instances reset-identity %s`", d.InstanceID, d.InstanceID)
	}
	info, found, err := v.lookup.LookupInstance(ctx, d.InstanceID)
	if err != nil {
		return nil, fmt.Errorf("look up instance %s: %w", d.InstanceID, err)
	}
	if !found {
		return nil, deny(ReasonNotInFleet, "instance %s is in no Auto Scaling group", d.InstanceID)
	}
	if !slices.Contains(acceptedStates, info.LifecycleState) {
		return nil, deny(ReasonNotInFleet, "instance %s is %s in its group, not pending or running", d.InstanceID, info.LifecycleState)
	}
	fleet, ok := v.state.FleetForGroup(info.Group)
	if !ok {
		return nil, deny(ReasonNotInFleet, "instance %s is in Auto Scaling group %s, which no fleet drives", d.InstanceID, info.Group)
	}
	return &Enrollment{Document: *d, Fleet: fleet, Group: info.Group, Record: rec}, nil
}

// RecordRefusal maps the FSM's refusal of a committed fsm.IdentityEnroll (a
// racing enrollment of the same id won) to already_enrolled and counts it;
// other errors are returned as they are.
func (v *Verifier) RecordRefusal(err error) error {
	if err == nil || !errors.Is(err, fsm.ErrConflict) {
		return err
	}
	if v.denied != nil {
		v.denied.WithLabelValues(string(ReasonAlreadyEnrolled)).Inc()
	}
	return deny(ReasonAlreadyEnrolled, "%v", err)
}
