package enroll

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"sync"
	"testing"
	"time"
)

// signer is a stand-in for AWS's per-region signing key.
type signer struct {
	key     *rsa.PrivateKey
	certPEM []byte // no headers
}

var (
	signersOnce sync.Once
	signers     [2]*signer
)

// testSigners returns two RSA-2048 signers, made once per test binary
// because RSA key generation is slow.
func testSigners(t testing.TB) (a, b *signer) {
	t.Helper()
	signersOnce.Do(func() {
		for i := range signers {
			signers[i] = newSigner(t, time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC))
		}
	})
	return signers[0], signers[1]
}

func newSigner(t testing.TB, notBefore, notAfter time.Time) *signer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &signer{key: key, certPEM: certFor(t, key, notBefore, notAfter)}
}

func certFor(t testing.TB, key *rsa.PrivateKey, notBefore, notAfter time.Time) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Amazon Web Services LLC"}, NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// withRegion is the signer's certificate PEM with a Region header.
func (s *signer) withRegion(t testing.TB, region string) []byte {
	t.Helper()
	blk, _ := pem.Decode(s.certPEM)
	blk.Headers = map[string]string{RegionHeader: region}
	return pem.EncodeToMemory(blk)
}

// sign is the IMDS /signature of doc: base64 with line breaks every 64
// characters, as AWS serves it.
func (s *signer) sign(t testing.TB, doc []byte) []byte {
	t.Helper()
	d := sha256.Sum256(doc)
	raw, err := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, d[:])
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.StdEncoding.EncodeToString(raw)
	var out []byte
	for len(b64) > 64 {
		out = append(out, b64[:64]...)
		out = append(out, '\n')
		b64 = b64[64:]
	}
	return append(out, b64...)
}

const (
	testAccount = "123456789012"
	testID      = "i-0123456789abcdef0"
	testIP      = "127.100.0.7"
)

var testPending = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// doc is an identity document as IMDS serves it (indented JSON).
func doc(t testing.TB, mut func(m map[string]any)) []byte {
	t.Helper()
	m := map[string]any{
		"accountId": testAccount, "architecture": "x86_64", "availabilityZone": "us-east-1a",
		"imageId": "ami-0abc", "instanceId": testID, "instanceType": "t3.micro",
		"pendingTime": testPending.Format(time.RFC3339), "privateIp": testIP,
		"region": "us-east-1", "version": "2017-09-30",
	}
	if mut != nil {
		mut(m)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hexSHA(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
