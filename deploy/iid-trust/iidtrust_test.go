package iidtrust

import (
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"slices"
	"testing"
)

// pinned are the SHA-256 fingerprints of the shipped certificates' DER, as
// `openssl x509 -noout -fingerprint -sha256` prints them without colons. A
// changed byte fails here even if it still parses.
var pinned = map[string]string{
	"us-east-1.pem":         "6502d11833537b9cf0a64d96d983ca76fe317d3ec75a82e5940ca05390eaa59f",
	"us-east-1-rsa2048.pem": "70923c22dd074172d0e5d27ea1ca865412525fccd8bc2cd0ff40660e275f0b30",
}

func TestShippedCertificates(t *testing.T) {
	if got := Regions(); !slices.Equal(got, []string{"us-east-1"}) {
		t.Fatalf("Regions() = %v, want [us-east-1]", got)
	}
	cases := []struct {
		file string
		load func(string) (*x509.Certificate, error)
		bits int
	}{
		{"us-east-1.pem", Load, 1024},
		{"us-east-1-rsa2048.pem", LoadRSA2048, 2048},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			cert, err := c.load("us-east-1")
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(cert.Raw)
			if got := hex.EncodeToString(sum[:]); got != pinned[c.file] {
				t.Fatalf("fingerprint %s, want %s", got, pinned[c.file])
			}
			// AWS's certificates are self-signed: the signature covers
			// every byte of the certificate, so this proves the PEM text
			// was copied intact.
			if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
				t.Fatalf("self-signature: %v", err)
			}
			if cert.Subject.Organization[0] != "Amazon Web Services LLC" {
				t.Fatalf("subject %v", cert.Subject)
			}
			if n := cert.PublicKey.(*rsa.PublicKey).N.BitLen(); n != c.bits {
				t.Fatalf("key is %d bits, want %d", n, c.bits)
			}
		})
	}
}

func TestLoadRefuses(t *testing.T) {
	for _, region := range []string{"eu-west-9", "", "../us-east-1", "us-east-1-rsa2048", "us-east-1.pem", "US-EAST-1"} {
		t.Run(region, func(t *testing.T) {
			if _, err := Load(region); !errors.Is(err, ErrUnknownRegion) {
				t.Fatalf("Load(%q) = %v, want ErrUnknownRegion", region, err)
			}
		})
	}
}

func TestParse(t *testing.T) {
	one, err := PEM("us-east-1")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		in   []byte
		ok   bool
	}{
		{"one certificate", one, true},
		{"two certificates", append(append([]byte{}, one...), one...), false},
		{"not PEM", []byte("hello"), false},
		{"key block", []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), false},
		{"garbage DER", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := Parse(c.in); (err == nil) != c.ok {
				t.Fatalf("Parse err = %v, want ok=%v", err, c.ok)
			}
		})
	}
}
