package enroll

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoadTrust(t *testing.T) {
	a, b := testSigners(t)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "ec"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	ecDER, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, ecKey.Public(), ecKey)
	if err != nil {
		t.Fatal(err)
	}
	ecPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ecDER})
	cat := func(parts ...[]byte) []byte {
		return []byte(strings.Join(func() []string {
			var s []string
			for _, p := range parts {
				s = append(s, string(p))
			}
			return s
		}(), ""))
	}
	for _, tc := range []struct {
		name    string
		files   map[string][]byte
		regions []string // per certificate, in order; nil: want error
		want    string
	}{
		{"file named by region", map[string][]byte{"us-east-1.pem": a.certPEM}, []string{"us-east-1"}, ""},
		{"file named region-suffix", map[string][]byte{"ap-southeast-2-signature.pem": a.certPEM}, []string{"ap-southeast-2"}, ""},
		{"gov region", map[string][]byte{"us-gov-west-1.pem": a.certPEM}, []string{"us-gov-west-1"}, ""},
		{"bundle with headers", map[string][]byte{"aws-iid.pem": cat(a.withRegion(t, "us-east-1"), b.withRegion(t, "eu-west-1"))}, []string{"us-east-1", "eu-west-1"}, ""},
		{"header beats file name", map[string][]byte{"us-east-1.pem": b.withRegion(t, "eu-west-1")}, []string{"eu-west-1"}, ""},
		{"one cert for two regions", map[string][]byte{"aws.pem": cat(a.withRegion(t, "us-east-1"), a.withRegion(t, "us-east-2"))}, []string{"us-east-1", "us-east-2"}, ""},
		{"headerless in a bundle", map[string][]byte{"aws-iid.pem": cat(a.withRegion(t, "us-east-1"), b.certPEM)}, nil, "aws-iid.pem): certificate 2 has no \"Region\" PEM header"},
		{"headerless, file not a region", map[string][]byte{"localcloud.pem": a.certPEM}, nil, "localcloud.pem): certificate 1 has no"},
		{"bad header", map[string][]byte{"x.pem": a.withRegion(t, "Mars")}, nil, `x.pem): certificate 1: Region header: "Mars" is not a region name`},
		{"not RSA", map[string][]byte{"us-east-1.pem": ecPEM}, nil, "us-east-1.pem): certificate 1: key is *ecdsa.PublicKey"},
		{"no certificate", map[string][]byte{"us-east-1.pem": []byte("hello")}, nil, "us-east-1.pem): no PEM CERTIFICATE block"},
		{"bad DER", map[string][]byte{"us-east-1.pem": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("x")})}, nil, "us-east-1.pem): certificate 1:"},
		{"too large", map[string][]byte{"us-east-1.pem": make([]byte, MaxTrustFileSize+1)}, nil, "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var files []string
			for name, data := range tc.files {
				p := filepath.Join(dir, name)
				if err := os.WriteFile(p, data, 0o644); err != nil {
					t.Fatal(err)
				}
				files = append(files, p)
			}
			ts, err := LoadTrust(files)
			if tc.regions == nil {
				if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "iid-trust (") {
					t.Fatalf("err = %v, want one naming the file and %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, c := range ts.Certs() {
				got = append(got, c.Region)
			}
			if !slices.Equal(got, tc.regions) {
				t.Fatalf("regions = %v, want %v", got, tc.regions)
			}
		})
	}
	if _, err := LoadTrust(nil); err == nil {
		t.Fatal("LoadTrust(nil) succeeded")
	}
	if _, err := LoadTrust([]string{filepath.Join(t.TempDir(), "missing.pem")}); err == nil || !strings.Contains(err.Error(), "missing.pem") {
		t.Fatalf("missing file: %v", err)
	}
}
