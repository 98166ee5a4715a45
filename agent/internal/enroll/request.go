package enroll

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"

	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// NonceSize is the length of the enrollment nonce in bytes.
const NonceSize = 32

// Request is what the agent sends to Enroll (or RenewCertificate) besides
// its identity document: a CSR for a key it keeps, and its nonce.
type Request struct {
	Key   *ecdsa.PrivateKey
	CSR   []byte // DER PKCS#10, subject CN agent/<instance-id>
	Nonce []byte // NonceSize bytes
}

// NewRequest makes a fresh ECDSA P-256 key and its CSR for instanceID. A
// nil nonce makes a new one (first enrollment); a stored nonce must be
// passed back unchanged, since the coordinator accepts a second enrollment
// of an instance only with the nonce of its first.
func NewRequest(instanceID string, nonce []byte) (Request, error) {
	if nonce == nil {
		var err error
		if nonce, err = NewNonce(); err != nil {
			return Request{}, err
		}
	}
	if len(nonce) != NonceSize {
		return Request{}, fmt.Errorf("enroll: nonce is %d bytes, want %d", len(nonce), NonceSize)
	}
	key, err := NewKey()
	if err != nil {
		return Request{}, err
	}
	csr, err := NewCSR(key, instanceID)
	if err != nil {
		return Request{}, err
	}
	return Request{Key: key, CSR: csr, Nonce: append([]byte(nil), nonce...)}, nil
}

// NewKey makes an ECDSA P-256 key.
func NewKey() (*ecdsa.PrivateKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("enroll: key: %w", err)
	}
	return k, nil
}

// NewNonce makes NonceSize random bytes.
func NewNonce() ([]byte, error) {
	b := make([]byte, NonceSize)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("enroll: nonce: %w", err)
	}
	return b, nil
}

// SubjectName is the CSR's common name for an instance.
func SubjectName(instanceID string) string { return string(tlsconf.RoleAgent) + "/" + instanceID }

// NewCSR returns a DER CSR signed by key whose subject is
// agent/<instanceID>. The coordinator sets the certificate's SPIFFE id
// itself; the subject only says what is asked for.
func NewCSR(key *ecdsa.PrivateKey, instanceID string) ([]byte, error) {
	if err := tlsconf.CheckName("instance id", instanceID); err != nil {
		return nil, err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: SubjectName(instanceID)},
	}, key)
	if err != nil {
		return nil, fmt.Errorf("enroll: csr: %w", err)
	}
	return der, nil
}
