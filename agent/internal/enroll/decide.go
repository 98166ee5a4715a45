package enroll

import (
	"crypto/x509"
	"fmt"
	"time"

	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// Action is what the agent does at start with what it has stored.
type Action int

const (
	// Enroll afresh: nothing usable is stored for this instance. Make a
	// new key and nonce (NewRequest(id, nil)), Save them before calling
	// Enroll, then Save the chain.
	Enroll Action = iota
	// Reenroll: this instance enrolled before but holds no valid
	// certificate (it expired offline, or the first answer was lost).
	// Enroll again with the stored nonce (NewRequest(id, st.Nonce)).
	Reenroll
	// Renew: the certificate is valid but past RenewAt. Connect with it
	// and call RenewCertificate; Save the new key and chain on success.
	Renew
	// Use the stored certificate until RenewAt.
	Use
)

func (a Action) String() string {
	switch a {
	case Enroll:
		return "enroll"
	case Reenroll:
		return "re-enroll"
	case Renew:
		return "renew"
	case Use:
		return "use"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Decision is Decide's answer and why, for the start-up log line.
type Decision struct {
	Action Action
	Reason string
	// RenewAt is when the stored certificate is due for renewal (zero
	// without one).
	RenewAt time.Time
}

// RenewAt is when an agent renews cert: NotBefore plus two thirds of its
// lifetime, or now if that moment has passed, so time.Until of it is never
// negative.
func RenewAt(cert *x509.Certificate, now time.Time) time.Time {
	if at := renewDue(cert); at.After(now) {
		return at
	}
	return now
}

func renewDue(cert *x509.Certificate) time.Time {
	return cert.NotBefore.Add(cert.NotAfter.Sub(cert.NotBefore) / 3 * 2)
}

// Decide chooses, at start, between using, renewing or replacing what st
// holds for instanceID at time now. It is pure: the clock is the caller's.
// A certificate for another instance (a data directory baked into an
// image, say) counts as nothing stored, nonce included: that nonce belongs
// to the other instance. A certificate whose NotBefore is still ahead is
// used: the agent's clock may lag, and the coordinator's judges.
func Decide(st State, instanceID string, now time.Time) Decision {
	leaf := st.Leaf()
	switch {
	case st.Nonce == nil:
		return Decision{Action: Enroll, Reason: "nothing stored"}
	case leaf == nil:
		return Decision{Action: Reenroll, Reason: "enrolled before without a certificate stored (an answer was lost)"}
	}
	id, err := tlsconf.ParseIdentity(leaf)
	if err != nil {
		return Decision{Action: Enroll, Reason: fmt.Sprintf("stored certificate has no agent identity: %v", err)}
	}
	if id.Role != tlsconf.RoleAgent || id.Name != instanceID {
		return Decision{Action: Enroll, Reason: fmt.Sprintf("stored certificate is for %s, not agent/%s", id, instanceID)}
	}
	renew := RenewAt(leaf, now)
	switch {
	case !now.Before(leaf.NotAfter):
		return Decision{Action: Reenroll, Reason: fmt.Sprintf("certificate expired at %s", leaf.NotAfter.UTC().Format(time.RFC3339)), RenewAt: renew}
	case !now.Before(renewDue(leaf)):
		return Decision{Action: Renew, Reason: fmt.Sprintf("certificate past two thirds of its life (expires %s)", leaf.NotAfter.UTC().Format(time.RFC3339)), RenewAt: renew}
	}
	return Decision{Action: Use, Reason: fmt.Sprintf("certificate valid until %s", leaf.NotAfter.UTC().Format(time.RFC3339)), RenewAt: renew}
}
