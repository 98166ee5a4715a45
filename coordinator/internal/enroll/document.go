package enroll

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
)

// Bounds on what an agent sends.
const (
	// MaxDocumentSize bounds the identity document (AWS's are under 1 KiB).
	MaxDocumentSize = 16 << 10
	// MaxSignatureSize bounds the base64 signature text, line breaks
	// included (an RSA-4096 signature is 684 characters).
	MaxSignatureSize = 4 << 10
	// MinNonceSize and MaxNonceSize bound the agent's enrollment nonce.
	MinNonceSize = 16
	MaxNonceSize = 128
)

// Document is the instance identity document, as AWS defines it. Only the
// fields enrollment checks are kept.
type Document struct {
	AccountID        string    `json:"accountId"`
	InstanceID       string    `json:"instanceId"`
	Region           string    `json:"region"`
	PrivateIP        string    `json:"privateIp"`
	AvailabilityZone string    `json:"availabilityZone"`
	ImageID          string    `json:"imageId"`
	InstanceType     string    `json:"instanceType"`
	PendingTime      time.Time `json:"pendingTime"`
}

var accountRE = regexp.MustCompile(`^[0-9]{12}$`)

// CheckSignature verifies sig, the base64 RSA-SHA256 PKCS #1 v1.5
// signature IMDS serves at /latest/dynamic/instance-identity/signature,
// over exactly doc, against every certificate of trust, and only then
// parses doc. The signature must come from a certificate of the
// document's own region, valid at now. It refuses with bad_signature or
// expired, or fails with ErrInvalid for input too large to be a document.
func CheckSignature(doc, sig []byte, trust *TrustSet, now time.Time) (*Document, error) {
	if len(doc) == 0 || len(doc) > MaxDocumentSize {
		return nil, fmt.Errorf("%w: document: %d bytes, must be 1 to %d", ErrInvalid, len(doc), MaxDocumentSize)
	}
	if len(sig) == 0 || len(sig) > MaxSignatureSize {
		return nil, fmt.Errorf("%w: signature: %d bytes, must be 1 to %d", ErrInvalid, len(sig), MaxSignatureSize)
	}
	raw, err := base64.StdEncoding.DecodeString(stripSpace(sig))
	if err != nil {
		return nil, deny(ReasonBadSignature, "signature is not base64: %v", err)
	}
	digest := sha256.Sum256(doc)
	var signers []TrustCert
	for _, c := range trust.certs {
		if rsa.VerifyPKCS1v15(c.key, crypto.SHA256, digest[:], raw) == nil {
			signers = append(signers, c)
		}
	}
	if len(signers) == 0 {
		return nil, deny(ReasonBadSignature, "the signature does not verify against any trusted certificate (--iid-trust) over the document as sent")
	}
	// Only now is the document known to come from a trusted signer.
	d, err := parseDocument(doc)
	if err != nil {
		return nil, err
	}
	var regions []string
	expired := false
	for _, c := range signers {
		if c.Region != d.Region {
			regions = append(regions, c.Region)
			continue
		}
		if c.valid(now) {
			return d, nil
		}
		expired = true
	}
	if expired {
		return nil, deny(ReasonExpired, "the certificate of region %s that signed the document is outside its validity at %s", d.Region, now.UTC().Format(time.RFC3339))
	}
	return nil, deny(ReasonBadSignature, "the document says region %q but is signed by a certificate trusted for %s only", d.Region, strings.Join(regions, ", "))
}

func stripSpace(b []byte) string {
	return string(bytes.Map(func(r rune) rune {
		switch r {
		case ' ', '\n', '\r', '\t':
			return -1
		}
		return r
	}, b))
}

// parseDocument reads and checks a document whose signature verified.
// AWS signed it, so a field it cannot read is a document this release does
// not understand, refused as invalid.
func parseDocument(b []byte) (*Document, error) {
	var d Document
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&d); err != nil {
		return nil, fmt.Errorf("%w: document: %v", ErrInvalid, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: document: data after the JSON object", ErrInvalid)
	}
	if err := fsm.ValidInstanceID(d.InstanceID); err != nil {
		return nil, fmt.Errorf("%w: document: instanceId: %s", ErrInvalid, strings.TrimPrefix(err.Msg, "id"))
	}
	if !accountRE.MatchString(d.AccountID) {
		return nil, fmt.Errorf("%w: document: accountId (%.20q): must be 12 digits", ErrInvalid, d.AccountID)
	}
	if err := ValidRegion(d.Region); err != nil {
		return nil, fmt.Errorf("%w: document: region: %v", ErrInvalid, err)
	}
	if _, err := netip.ParseAddr(d.PrivateIP); err != nil || len(d.PrivateIP) > 45 {
		return nil, fmt.Errorf("%w: document: privateIp (%.45q): not an IP address", ErrInvalid, d.PrivateIP)
	}
	if d.PendingTime.IsZero() || d.PendingTime.Unix() <= 0 {
		return nil, fmt.Errorf("%w: document: pendingTime: required", ErrInvalid)
	}
	return &d, nil
}
