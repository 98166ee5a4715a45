package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// TestIssueFromCSRKeys pins which request keys are signed: ECDSA P-256 and
// RSA of 2048 bits or more, nothing weaker and nothing else.
func TestIssueFromCSRKeys(t *testing.T) {
	ca := newCA(t, "shoal")
	gen := func(f func() (crypto.Signer, error)) crypto.Signer {
		k, err := f()
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	for _, tc := range []struct {
		name string
		key  crypto.Signer
		want string // "" = issued
	}{
		{"ecdsa p256", gen(func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }), ""},
		{"rsa 2048", gen(func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) }), ""},
		{"ecdsa p384", gen(func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P384(), rand.Reader) }), "ECDSA key must be on P-256, got P-384"},
		{"rsa 1024", gen(func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 1024) }), "RSA key of 1024 bits, must be 2048 to 8192"},
		{"ed25519", gen(func() (crypto.Signer, error) { _, k, err := ed25519.GenerateKey(rand.Reader); return k, err }), "key must be ECDSA P-256 or RSA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			req := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
			certPEM, err := ca.IssueFromCSR(req, LeafRequest{Identity: id(tlsconf.RoleAgent, "i-0abc")})
			if tc.want != "" {
				if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want ErrInvalid with %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := parseCert(t, certPEM)
			if !c.PublicKey.(interface{ Equal(crypto.PublicKey) bool }).Equal(tc.key.Public()) {
				t.Fatal("certificate is not for the request's key")
			}
		})
	}
}
