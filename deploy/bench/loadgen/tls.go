package loadgen

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"os"
	"time"

	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// agentCA signs the simulated agents' certificates in-process.
//
// A real agent gets its certificate from the coordinator's Enroll RPC, and
// an operator issues one by hand with `shoal-coordinator tls cert create
// --role agent`. Neither fits thousands of simulated agents started at once
// (enrollment has its own benchmark, deploy/bench/enroll.sh), so this bench
// tool reads the CA's key file and signs each agent's own ECDSA P-256 key
// itself, with the same shape as coordinator/internal/pki issues: URI SAN
// spiffe://<cluster>/agent/<instance-id>, client-auth only, 24 h at most.
// Nothing but a benchmark may hold the CA key this way.
type agentCA struct {
	cert    *x509.Certificate
	key     crypto.Signer
	pool    *x509.CertPool
	cluster string
	now     func() time.Time
}

// maxPEM bounds the CA files read.
const maxPEM = 1 << 20

// loadAgentCA reads the CA bundle (every certificate in it is trusted for
// the coordinators) and the CA key; the bundle must hold the key's
// certificate.
func loadAgentCA(certFile, keyFile, cluster string, now func() time.Time) (*agentCA, error) {
	certPEM, err := readBounded(certFile)
	if err != nil {
		return nil, fmt.Errorf("ca-cert: %w", err)
	}
	keyPEM, err := readBounded(keyFile)
	if err != nil {
		return nil, fmt.Errorf("ca-key: %w", err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("ca-key (%s): %w", keyFile, err)
	}
	pub, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("ca-key (%s): %w", keyFile, err)
	}
	ca := &agentCA{key: key, pool: x509.NewCertPool(), cluster: cluster, now: now}
	for rest := certPEM; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("ca-cert (%s): %w", certFile, err)
		}
		ca.pool.AddCert(c)
		if c.IsCA && bytes.Equal(c.RawSubjectPublicKeyInfo, pub) {
			ca.cert = c
		}
	}
	if ca.cert == nil {
		return nil, fmt.Errorf("ca-cert (%s): no CA certificate for the key in %s", certFile, keyFile)
	}
	return ca, nil
}

func readBounded(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if st.Size() > maxPEM {
		return nil, fmt.Errorf("%s: %d bytes, more than %d", path, st.Size(), maxPEM)
	}
	return os.ReadFile(path)
}

func parseKey(b []byte) (crypto.Signer, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, errors.New("no PEM block found")
	}
	var k any
	var err error
	switch blk.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", blk.Type)
	}
	if err != nil {
		return nil, err
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key is %T, not a signing key", k)
	}
	return s, nil
}

// agentCertTTL is the longest an agent certificate lives (issue 14).
const agentCertTTL = 24 * time.Hour

// issue makes a fresh ECDSA P-256 key and an agent certificate naming
// instanceID.
func (ca *agentCA) issue(instanceID string) (tls.Certificate, error) {
	id := tlsconf.Identity{Cluster: ca.cluster, Role: tlsconf.RoleAgent, Name: instanceID}
	if err := id.Validate(); err != nil {
		return tls.Certificate{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, err
	}
	notBefore := ca.now().Add(-time.Minute)
	notAfter := notBefore.Add(agentCertTTL)
	if notAfter.After(ca.cert.NotAfter) {
		notAfter = ca.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial.Add(serial, big.NewInt(1)),
		Subject:               pkix.Name{CommonName: "agent " + instanceID, Organization: []string{"Shoal " + ca.cluster}},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{id.URI()},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// clientConfig is one agent's TLS: TLS 1.3, its own certificate, and the
// coordinator verified as a server of the cluster by its SPIFFE id, as
// tlsconf.ClientConfig does for a Source.
func (ca *agentCA) clientConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		// Not insecure: VerifyConnection checks the chain and the identity;
		// the standard check would want a host name.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return ca.verifyServer(cs)
		},
	}
}

func (ca *agentCA) verifyServer(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("coordinator presented no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	leaf := cs.PeerCertificates[0]
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: ca.pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return fmt.Errorf("coordinator certificate: %w", err)
	}
	id, err := tlsconf.ParseIdentity(leaf)
	if err != nil {
		return fmt.Errorf("coordinator certificate: %w", err)
	}
	if id.Cluster != ca.cluster || id.Role != tlsconf.RoleServer {
		return fmt.Errorf("coordinator certificate %s: want a server of cluster %q", id, ca.cluster)
	}
	return nil
}
