package localcloud

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// iidSigner signs instance identity documents the way EC2 does for
// /latest/dynamic/instance-identity/signature: RSA-SHA256 (PKCS#1 v1.5)
// over the exact document bytes, base64. The key lives only in memory and
// is new at every start; its self-signed certificate is what a coordinator
// trusts (--iid-trust), as it trusts AWS's per-region certificate.
type iidSigner struct {
	key     *rsa.PrivateKey
	cert    *x509.Certificate
	certPEM []byte
}

func newIIDSigner(accountID string, now time.Time) (*iidSigner, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("instance identity key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	name := pkix.Name{
		Organization: []string{"shoal-localcloud"},
		CommonName:   "shoal-localcloud instance identity, account " + accountID,
	}
	// Wall-clock validity, long like AWS's own: the cloud's clock may be
	// moved by tests, and verifiers of identity documents use the key, not
	// the dates.
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               name,
		Issuer:                name,
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(100, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("instance identity certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &iidSigner{key: key, cert: cert, certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// sign returns the base64 signature of doc, as /signature serves it.
func (s *iidSigner) sign(doc []byte) (string, error) {
	sum := sha256.Sum256(doc)
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// iidField is one key of the document, in EC2's order.
type iidField struct {
	key string
	val any // nil is JSON null
}

// identityDocument renders the document byte for byte in EC2's layout
// (Jackson's pretty printer: two-space indent, " : " between key and
// value, fields in EC2's order). It is built once per instance, at launch,
// so every read serves, and /signature covers, the same bytes.
func identityDocument(v imdsView) []byte {
	fields := []iidField{
		{"accountId", v.AccountID},
		{"architecture", "x86_64"},
		{"availabilityZone", v.AZ},
		{"billingProducts", nil},
		{"devpayProductCodes", nil},
		{"marketplaceProductCodes", nil},
		{"imageId", v.ImageID},
		{"instanceId", v.InstanceID},
		{"instanceType", v.InstanceType},
		{"kernelId", nil},
		{"pendingTime", v.LaunchTime.UTC().Format(time.RFC3339)},
		{"privateIp", v.IP},
		{"ramdiskId", nil},
		{"region", v.Region},
		{"version", "2017-09-30"},
	}
	var b bytes.Buffer
	b.WriteString("{\n")
	for i, f := range fields {
		k, _ := json.Marshal(f.key)
		val, _ := json.Marshal(f.val)
		fmt.Fprintf(&b, "  %s : %s", k, val)
		if i < len(fields)-1 {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
	}
	b.WriteString("}")
	return b.Bytes()
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory and a rename, so a reader never sees half a certificate.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
