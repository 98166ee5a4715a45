package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// MaxEvidenceBytes bounds each of the document and the signature. EC2's
// document is about 500 bytes and its signature about 200; anything near
// this limit is not from EC2.
const MaxEvidenceBytes = 16 << 10

// ErrNoEvidence is IMDS answering 404 for the document or signature: not
// retried, since it will not appear.
var ErrNoEvidence = errors.New("no instance identity document")

// IMDS paths of the enrollment evidence, under /latest/dynamic/.
const (
	PathDocument  = "instance-identity/document"
	PathSignature = "instance-identity/signature"
)

// Evidence is what an instance shows the coordinator to enroll: the
// instance identity document and its signature, exactly as IMDS served
// them. The coordinator verifies Signature over exactly Document, so
// neither may be trimmed, re-encoded or rebuilt from Parsed.
type Evidence struct {
	// Document is the raw JSON of /latest/dynamic/instance-identity/document.
	Document []byte
	// Signature is the raw body of /latest/dynamic/instance-identity/signature:
	// base64 RSA-SHA256 over Document.
	Signature []byte
	// Parsed is Document decoded, for the agent's own use (logs, its
	// instance id). It is unverified: only the coordinator checks it.
	Parsed Document
}

// Document is the part of an instance identity document the agent reads.
type Document struct {
	AccountID        string    `json:"accountId"`
	Architecture     string    `json:"architecture"`
	AvailabilityZone string    `json:"availabilityZone"`
	ImageID          string    `json:"imageId"`
	InstanceID       string    `json:"instanceId"`
	InstanceType     string    `json:"instanceType"`
	PendingTime      time.Time `json:"pendingTime"`
	PrivateIP        string    `json:"privateIp"`
	Region           string    `json:"region"`
	Version          string    `json:"version"`
}

// FetchEvidence reads the identity document and its signature from IMDSv2,
// with cfg's endpoint, attempts and backoff. cfg.InstanceID (development
// without IMDS) has no evidence to give: it is an ErrConfig error.
func FetchEvidence(ctx context.Context, cfg Config) (Evidence, error) {
	if err := cfg.Validate(); err != nil {
		return Evidence{}, err
	}
	if cfg.InstanceID != "" {
		return Evidence{}, fmt.Errorf("%w: instance id %q was given instead of IMDS: there is no identity document to enroll with; issue the agent a certificate by hand (tls cert create --role agent --name %s)", ErrConfig, cfg.InstanceID, cfg.InstanceID)
	}
	var ev Evidence
	err := withRetries(ctx, cfg, func(c *imds.Client) error {
		var err error
		ev, err = fetchEvidence(ctx, c)
		return err
	})
	return ev, err
}

func fetchEvidence(ctx context.Context, c *imds.Client) (Evidence, error) {
	doc, err := getDynamic(ctx, c, PathDocument)
	if err != nil {
		return Evidence{}, err
	}
	sig, err := getDynamic(ctx, c, PathSignature)
	if err != nil {
		return Evidence{}, err
	}
	parsed, err := ParseDocument(doc)
	if err != nil {
		return Evidence{}, err
	}
	return Evidence{Document: doc, Signature: sig, Parsed: parsed}, nil
}

// ParseDocument decodes an identity document and checks it names an
// instance; it does not verify anything.
func ParseDocument(doc []byte) (Document, error) {
	var d Document
	if err := json.Unmarshal(doc, &d); err != nil {
		return Document{}, fmt.Errorf("%w: %s: %w", ErrIMDS, PathDocument, err)
	}
	if d.InstanceID == "" || d.Region == "" || d.PrivateIP == "" {
		return Document{}, fmt.Errorf("%w: %s: instanceId, region and privateIp are required, got %q, %q, %q", ErrIMDS, PathDocument, d.InstanceID, d.Region, d.PrivateIP)
	}
	return d, nil
}

// getDynamic reads one /latest/dynamic/ path as exact bytes, at most
// MaxEvidenceBytes of them.
func getDynamic(ctx context.Context, c *imds.Client, path string) ([]byte, error) {
	out, err := c.GetDynamicData(ctx, &imds.GetDynamicDataInput{Path: path})
	if err != nil {
		var re *smithyhttp.ResponseError
		if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound {
			return nil, fmt.Errorf("%w: %w: %s: not found (not on EC2, or a metadata service that does not sign identity documents)", ErrIMDS, ErrNoEvidence, path)
		}
		return nil, fmt.Errorf("%w: %s: %w", ErrIMDS, path, err)
	}
	defer out.Content.Close()
	b, err := io.ReadAll(io.LimitReader(out.Content, MaxEvidenceBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrIMDS, path, err)
	}
	if len(b) > MaxEvidenceBytes {
		return nil, fmt.Errorf("%w: %s: larger than %d bytes", ErrIMDS, path, MaxEvidenceBytes)
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: %s: empty", ErrIMDS, path)
	}
	return b, nil
}
