package enroll

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net/url"
	"testing"
	"time"
)

// issue returns a chain [leaf, ca] for key, as the coordinator's CA would
// issue it: URI SAN spiffe://shoal/<role>/<name>, valid [from, until).
func issue(t *testing.T, key *ecdsa.PrivateKey, role, name string, from, until time.Time) []*x509.Certificate {
	t.Helper()
	caKey, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"}, NotBefore: from.Add(-time.Hour),
		NotAfter: until.Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: role + "/" + name}, NotBefore: from, NotAfter: until,
		URIs: []*url.URL{{Scheme: "spiffe", Host: "shoal", Path: "/" + role + "/" + name}}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, leafTmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return []*x509.Certificate{leaf, ca}
}
