package enroll

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Bounds on the trust configuration.
const (
	// MaxTrustFileSize bounds one --iid-trust file.
	MaxTrustFileSize = 1 << 20
	// MaxTrustCerts bounds the certificates of all --iid-trust files
	// (AWS has about 35 regions).
	MaxTrustCerts = 512
	// RegionHeader is the PEM header that binds a certificate to a region.
	RegionHeader = "Region"
)

var (
	regionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)
	// A file named <region>.pem or <region>-<anything>.pem.
	regionFileRE = regexp.MustCompile(`^([a-z]{2}(?:-[a-z]+)+-[0-9]{1,2})(?:-[^/]*)?\.pem$`)
)

// ValidRegion reports why r is not an AWS region name, or nil.
func ValidRegion(r string) error {
	if len(r) > 32 || !regionRE.MatchString(r) {
		return fmt.Errorf("%q is not a region name (like us-east-1)", r)
	}
	return nil
}

// TrustCert is one trusted signing certificate and the region it vouches
// for.
type TrustCert struct {
	Region string
	Cert   *x509.Certificate
	// File is where it was read from, for messages.
	File string
	key  *rsa.PublicKey
}

// TrustSet is the certificates that may sign identity documents, each
// bound to one region. A certificate AWS uses for several regions appears
// once per region. It is read-only once loaded.
type TrustSet struct {
	certs []TrustCert
}

// Certs returns the trusted certificates.
func (t *TrustSet) Certs() []TrustCert { return append([]TrustCert(nil), t.certs...) }

// Regions returns the regions with at least one certificate, sorted.
func (t *TrustSet) Regions() []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range t.certs {
		if !seen[c.Region] {
			seen[c.Region] = true
			out = append(out, c.Region)
		}
	}
	slices.Sort(out)
	return out
}

// LoadTrust reads every --iid-trust file. Each is a PEM file of one or
// more CERTIFICATE blocks. A block is bound to a region by its "Region:"
// header; a block without one takes the region of the file's name,
// <region>.pem or <region>-*.pem, and in a file named otherwise it is an
// error naming the file.
func LoadTrust(files []string) (*TrustSet, error) {
	t := &TrustSet{}
	if len(files) == 0 {
		return nil, fmt.Errorf("iid-trust: at least one file is required")
	}
	for _, name := range files {
		b, err := readBounded(name, MaxTrustFileSize)
		if err != nil {
			return nil, fmt.Errorf("iid-trust (%s): %w", name, err)
		}
		if err := t.Add(name, b); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func readBounded(name string, max int64) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("larger than %d bytes", max)
	}
	return b, nil
}

// Add parses the PEM data of the file called name into t (see LoadTrust).
func (t *TrustSet) Add(name string, data []byte) error {
	fileRegion := ""
	if m := regionFileRE.FindStringSubmatch(filepath.Base(name)); m != nil && ValidRegion(m[1]) == nil {
		fileRegion = m[1]
	}
	n := 0
	for rest := data; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		n++
		region := strings.TrimSpace(blk.Headers[RegionHeader])
		switch {
		case region != "":
			if err := ValidRegion(region); err != nil {
				return fmt.Errorf("iid-trust (%s): certificate %d: %s header: %w", name, n, RegionHeader, err)
			}
		case fileRegion != "":
			region = fileRegion
		default:
			return fmt.Errorf("iid-trust (%s): certificate %d has no %q PEM header and the file is not named <region>.pem or <region>-*.pem, so its region is unknown", name, n, RegionHeader)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return fmt.Errorf("iid-trust (%s): certificate %d: %w", name, n, err)
		}
		key, ok := c.PublicKey.(*rsa.PublicKey)
		if !ok {
			return fmt.Errorf("iid-trust (%s): certificate %d: key is %T; the identity document signature is RSA", name, n, c.PublicKey)
		}
		if key.N.BitLen() < 1024 {
			return fmt.Errorf("iid-trust (%s): certificate %d: RSA key of %d bits is too small", name, n, key.N.BitLen())
		}
		if len(t.certs) >= MaxTrustCerts {
			return fmt.Errorf("iid-trust (%s): more than %d certificates in all", name, MaxTrustCerts)
		}
		t.certs = append(t.certs, TrustCert{Region: region, Cert: c, File: name, key: key})
	}
	if n == 0 {
		return fmt.Errorf("iid-trust (%s): no PEM CERTIFICATE block", name)
	}
	return nil
}

// valid reports whether c is inside its validity window at now.
func (c TrustCert) valid(now time.Time) bool {
	return !now.Before(c.Cert.NotBefore) && !now.After(c.Cert.NotAfter)
}
