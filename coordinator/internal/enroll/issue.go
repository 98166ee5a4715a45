package enroll

import (
	"fmt"
	"time"

	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	"github.com/shoal-dev/shoal/coordinator/internal/pki"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// MaxCSRSize bounds a PEM certificate request.
const MaxCSRSize = 16 << 10

func checkTTL(ttl time.Duration) error {
	if ttl <= pki.ClockSkew || ttl > pki.MaxAgentValidity {
		return fmt.Errorf("agent-cert-ttl (%s): must be more than %s and at most %s", ttl, pki.ClockSkew, pki.MaxAgentValidity)
	}
	return nil
}

// Issuer signs agent certificates with the cluster's CA.
type Issuer struct {
	ca  *pki.CA
	ttl time.Duration
	now func() time.Time
}

// NewIssuer returns an Issuer for ca; ttl is Config.AgentCertTTL and now
// the clock (nil: time.Now).
func NewIssuer(ca *pki.CA, ttl time.Duration, now func() time.Time) (*Issuer, error) {
	if ca == nil || ca.Cluster() == "" {
		return nil, fmt.Errorf("ca-cert: a CA constrained to one cluster is required to issue agent certificates")
	}
	if err := checkTTL(ttl); err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	return &Issuer{ca: ca, ttl: ttl, now: now}, nil
}

// Issue signs the key of csrPEM for the instance of a verified enrollment:
// spiffe://<cluster>/agent/<instance id>. The request's signature must
// verify and its key be ECDSA P-256 or RSA of 2048 bits or more; the names
// it asks for are ignored.
func (is *Issuer) Issue(e *Enrollment, csrPEM []byte) ([]byte, error) {
	if e == nil {
		return nil, fmt.Errorf("%w: no verified enrollment", ErrInvalid)
	}
	return is.sign(e.Document.InstanceID, csrPEM)
}

// Renew gives the holder of an agent certificate, peer as the handshake
// verified it, a fresh certificate for the same instance id. Any other
// role is refused with wrong_role.
func (is *Issuer) Renew(peer tlsconf.Identity, csrPEM []byte) ([]byte, error) {
	if peer.Role != tlsconf.RoleAgent {
		return nil, deny(ReasonWrongRole, "only an agent certificate renews an agent certificate; this one is %s", peer.Role)
	}
	if peer.Cluster != is.ca.Cluster() {
		return nil, deny(ReasonWrongRole, "the certificate is of cluster %q, this CA signs for %q", peer.Cluster, is.ca.Cluster())
	}
	if err := fsm.ValidInstanceID(peer.Name); err != nil {
		return nil, deny(ReasonWrongRole, "the agent certificate names %q, not an instance id", peer.Name)
	}
	return is.sign(peer.Name, csrPEM)
}

func (is *Issuer) sign(instanceID string, csrPEM []byte) ([]byte, error) {
	if len(csrPEM) == 0 || len(csrPEM) > MaxCSRSize {
		return nil, fmt.Errorf("%w: csr: %d bytes, must be 1 to %d", ErrInvalid, len(csrPEM), MaxCSRSize)
	}
	cert, err := is.ca.IssueFromCSR(csrPEM, pki.LeafRequest{
		Identity: tlsconf.Identity{Cluster: is.ca.Cluster(), Role: tlsconf.RoleAgent, Name: instanceID},
		Validity: is.ttl,
		Now:      is.now(),
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return cert, nil
}
