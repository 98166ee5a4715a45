package enroll

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"testing"
)

func TestNewRequest(t *testing.T) {
	stored := bytes.Repeat([]byte{7}, NonceSize)
	cases := []struct {
		name     string
		instance string
		nonce    []byte
		ok       bool
	}{
		{"first enrollment makes a nonce", "i-0123456789abcdef0", nil, true},
		{"stored nonce is kept", "i-0123456789abcdef0", stored, true},
		{"short nonce", "i-0123456789abcdef0", []byte{1, 2, 3}, false},
		{"empty instance id", "", nil, false},
		{"instance id with a slash", "i-0abc/../server", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := NewRequest(c.instance, c.nonce)
			if (err == nil) != c.ok {
				t.Fatalf("err = %v, want ok=%v", err, c.ok)
			}
			if !c.ok {
				return
			}
			if len(r.Nonce) != NonceSize || (c.nonce != nil && !bytes.Equal(r.Nonce, c.nonce)) {
				t.Fatalf("nonce %x", r.Nonce)
			}
			if c.nonce == nil && bytes.Equal(r.Nonce, make([]byte, NonceSize)) {
				t.Fatal("nonce is all zeros")
			}
			if r.Key.Curve != elliptic.P256() {
				t.Fatalf("key curve %v, want P-256", r.Key.Curve.Params().Name)
			}
			csr, err := x509.ParseCertificateRequest(r.CSR)
			if err != nil {
				t.Fatal(err)
			}
			if err := csr.CheckSignature(); err != nil {
				t.Fatalf("CSR signature: %v", err)
			}
			if csr.Subject.CommonName != "agent/"+c.instance {
				t.Fatalf("CSR subject %q", csr.Subject.CommonName)
			}
			if pub, ok := csr.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&r.Key.PublicKey) {
				t.Fatal("CSR is not for the request's key")
			}
		})
	}
	a, _ := NewRequest("i-0abc", nil)
	b, _ := NewRequest("i-0abc", nil)
	if bytes.Equal(a.Nonce, b.Nonce) || a.Key.Equal(b.Key) {
		t.Fatal("two requests share a nonce or a key")
	}
}
