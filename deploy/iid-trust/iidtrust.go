package iidtrust

import (
	"crypto/rsa"
	"crypto/x509"
	"embed"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"sort"
	"strings"
)

// FS holds the PEM files: <region>.pem and <region>-rsa2048.pem.
//
//go:embed *.pem
var FS embed.FS

// ErrUnknownRegion is returned for a region with no shipped certificate.
var ErrUnknownRegion = errors.New("no AWS instance identity certificate shipped for region")

// regionRE is the shape of an AWS region name, e.g. us-east-1 or
// us-gov-west-1; it also keeps file names out of the lookup.
var regionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)

// Regions lists the regions that have a /signature (RSA) certificate, sorted.
func Regions() []string {
	var out []string
	ents, _ := fs.ReadDir(FS, ".")
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".pem")
		if ok && !strings.HasSuffix(name, "-rsa2048") {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// PEM returns the PEM bytes of region's RSA certificate for /signature,
// exactly as shipped.
func PEM(region string) ([]byte, error) { return read(region, ".pem") }

// Load returns region's RSA certificate for /signature: the one whose key
// verifies base64 RSA-SHA256 over the exact document bytes.
func Load(region string) (*x509.Certificate, error) { return load(region, ".pem") }

// LoadRSA2048 returns region's RSA-2048 certificate for /rsa2048 (PKCS7).
func LoadRSA2048(region string) (*x509.Certificate, error) { return load(region, "-rsa2048.pem") }

func read(region, suffix string) ([]byte, error) {
	if !regionRE.MatchString(region) {
		return nil, fmt.Errorf("%w: %q is not a region name (e.g. us-east-1)", ErrUnknownRegion, region)
	}
	b, err := FS.ReadFile(region + suffix)
	if err != nil {
		return nil, fmt.Errorf("%w: %s (shipped: %s)", ErrUnknownRegion, region, strings.Join(Regions(), ", "))
	}
	return b, nil
}

func load(region, suffix string) (*x509.Certificate, error) {
	b, err := read(region, suffix)
	if err != nil {
		return nil, err
	}
	return Parse(b)
}

// Parse reads exactly one RSA certificate from PEM bytes, the shape of a
// --iid-trust file with one region in it.
func Parse(b []byte) (*x509.Certificate, error) {
	blk, rest := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, errors.New("iid trust: no PEM CERTIFICATE block")
	}
	if len(strings.TrimSpace(string(rest))) != 0 {
		return nil, errors.New("iid trust: more than one PEM block; give one certificate per file")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("iid trust: %w", err)
	}
	if _, ok := c.PublicKey.(*rsa.PublicKey); !ok {
		return nil, fmt.Errorf("iid trust: certificate key is %T, want RSA", c.PublicKey)
	}
	return c, nil
}
