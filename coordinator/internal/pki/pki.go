package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// Validity limits and defaults.
const (
	// MaxAgentValidity bounds an agent certificate: agents come and go with
	// the group, and a stolen one must not outlive a day.
	MaxAgentValidity = 24 * time.Hour
	// ClockSkew backdates NotBefore so a peer whose clock is a little behind
	// accepts a certificate issued just now. It counts against the validity.
	ClockSkew = time.Minute

	DefaultCAValidity = 5 * 365 * 24 * time.Hour

	// MinRSABits is the smallest RSA key IssueFromCSR signs.
	MinRSABits = 2048
	// MaxRSABits bounds the work a request's key can cost.
	MaxRSABits = 8192
)

// DefaultValidity is how long a certificate of role r lasts when not told.
func DefaultValidity(r tlsconf.Role) time.Duration {
	switch r {
	case tlsconf.RoleAgent:
		return MaxAgentValidity
	case tlsconf.RoleOperator:
		return 30 * 24 * time.Hour
	default:
		return 365 * 24 * time.Hour
	}
}

// ErrInvalid is wrapped by every error about a bad request.
var ErrInvalid = errors.New("invalid certificate request")

// CA is a certificate authority able to sign: its certificate and key.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// Cluster is the cluster the CA signs for, from its URI name constraint.
func (ca *CA) Cluster() string {
	if len(ca.Cert.PermittedURIDomains) == 1 {
		return ca.Cert.PermittedURIDomains[0]
	}
	return ""
}

// CARequest describes a new CA.
type CARequest struct {
	Cluster  string
	Validity time.Duration
	Now      time.Time // zero: time.Now()
}

// NewCA creates a CA key and its self-signed certificate, which may sign
// only leaves (path length 0) and only URIs of req.Cluster.
func NewCA(req CARequest) (*CA, error) {
	if err := tlsconf.CheckCluster(req.Cluster); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if req.Validity <= ClockSkew {
		return nil, fmt.Errorf("%w: validity (%s): must be longer than %s", ErrInvalid, req.Validity, ClockSkew)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	notBefore := now(req.Now).Add(-ClockSkew)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "Shoal CA " + req.Cluster + " " + fmt.Sprintf("%032x", serial)[:8], Organization: []string{"Shoal"}},
		NotBefore:             notBefore,
		NotAfter:              notBefore.Add(req.Validity),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		PermittedURIDomains:   []string{req.Cluster},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

// LeafRequest describes a certificate to issue.
type LeafRequest struct {
	Identity tlsconf.Identity
	IPs      []net.IP
	DNSNames []string
	// Validity counts from Now minus ClockSkew; zero means
	// DefaultValidity(Identity.Role).
	Validity time.Duration
	Now      time.Time // zero: time.Now()
}

// validate checks the request against this CA, naming the field.
func (ca *CA) validate(req LeafRequest) error {
	if err := req.Identity.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if c := ca.Cluster(); c != "" && c != req.Identity.Cluster {
		return fmt.Errorf("%w: cluster (%q): this CA signs for cluster %q only", ErrInvalid, req.Identity.Cluster, c)
	}
	v := req.Validity
	switch {
	case v < 0:
		return fmt.Errorf("%w: validity (%s): must be positive", ErrInvalid, v)
	case v > 0 && v <= ClockSkew:
		return fmt.Errorf("%w: validity (%s): must be longer than %s", ErrInvalid, v, ClockSkew)
	case req.Identity.Role == tlsconf.RoleAgent && v > MaxAgentValidity:
		return fmt.Errorf("%w: validity (%s): an agent certificate lasts %s at most", ErrInvalid, v, MaxAgentValidity)
	}
	for _, ip := range req.IPs {
		if ip == nil || ip.IsUnspecified() {
			return fmt.Errorf("%w: ip (%v): not a usable address", ErrInvalid, ip)
		}
	}
	for _, d := range req.DNSNames {
		if err := checkDNS(d); err != nil {
			return fmt.Errorf("%w: dns (%q): %w", ErrInvalid, d, err)
		}
	}
	return nil
}

func checkDNS(d string) error {
	if d == "" || len(d) > 253 {
		return errors.New("must be 1 to 253 characters")
	}
	for i, label := range strings.Split(strings.TrimPrefix(d, "*."), ".") {
		if label == "" || len(label) > 63 {
			return fmt.Errorf("label %d must be 1 to 63 characters", i+1)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("label %q must not start or end with '-'", label)
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return fmt.Errorf("%q not allowed (letters, digits, '-', '.')", c)
			}
		}
	}
	return nil
}

// Issue creates a key and a certificate for req. It returns the
// certificate and key as PEM.
func (ca *CA) Issue(req LeafRequest) (certPEM, keyPEM []byte, err error) {
	if err := ca.validate(req); err != nil {
		return nil, nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	certPEM, err = ca.sign(req, key.Public())
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err = EncodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

// IssueFromCSR signs the public key of a PEM certificate request for req.
// The request's signature must verify, proving its sender holds the key,
// and the key be ECDSA P-256 or RSA of MinRSABits to MaxRSABits; its subject
// and any names it asks for are ignored.
func (ca *CA) IssueFromCSR(csrPEM []byte, req LeafRequest) ([]byte, error) {
	if err := ca.validate(req); err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(csrPEM)
	if blk == nil || blk.Type != "CERTIFICATE REQUEST" {
		return nil, fmt.Errorf("%w: csr: not a PEM CERTIFICATE REQUEST", ErrInvalid)
	}
	csr, err := x509.ParseCertificateRequest(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: csr: %w", ErrInvalid, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: csr: signature: %w", ErrInvalid, err)
	}
	switch pub := csr.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if pub.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%w: csr: ECDSA key must be on P-256, got %s", ErrInvalid, pub.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		if n := pub.N.BitLen(); n < MinRSABits || n > MaxRSABits {
			return nil, fmt.Errorf("%w: csr: RSA key of %d bits, must be %d to %d", ErrInvalid, n, MinRSABits, MaxRSABits)
		}
	default:
		return nil, fmt.Errorf("%w: csr: key must be ECDSA P-256 or RSA of at least %d bits, got %T", ErrInvalid, MinRSABits, csr.PublicKey)
	}
	return ca.sign(req, csr.PublicKey)
}

func (ca *CA) sign(req LeafRequest, pub crypto.PublicKey) ([]byte, error) {
	v := req.Validity
	if v == 0 {
		v = DefaultValidity(req.Identity.Role)
	}
	notBefore := now(req.Now).Add(-ClockSkew)
	notAfter := notBefore.Add(v)
	if notAfter.After(ca.Cert.NotAfter) {
		return nil, fmt.Errorf("%w: validity (%s): would end %s, after the CA does (%s)", ErrInvalid, v, notAfter.UTC().Format(time.RFC3339), ca.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	usage := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if req.Identity.Role == tlsconf.RoleServer {
		// Servers dial each other (raft, forwarded writes) as well as serve.
		usage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		// Not a host name, so nothing mistakes it for one.
		Subject:               pkix.Name{CommonName: string(req.Identity.Role) + " " + req.Identity.Name, Organization: []string{"Shoal " + req.Identity.Cluster}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           usage,
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{req.Identity.URI()},
		IPAddresses:           req.IPs,
		DNSNames:              req.DNSNames,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// newSerial is a random positive 128-bit serial number: unique without
// keeping state, and unpredictable (RFC 5280 allows up to 20 octets).
func newSerial() (*big.Int, error) {
	for {
		n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
		if err != nil {
			return nil, err
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

func now(t time.Time) time.Time {
	if t.IsZero() {
		return time.Now()
	}
	return t
}
