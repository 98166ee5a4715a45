package demoapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
)

// Identity sources, reported in the startup log.
const (
	SourceFlag     = "flag"
	SourceIMDS     = "imds"
	SourceHostname = "hostname"
)

// Identity is the id responses carry and where it came from.
type Identity struct {
	ID     string
	Source string // SourceFlag, SourceIMDS or SourceHostname
	// IMDSErr says why IMDS gave no id when Source is SourceHostname.
	IMDSErr error
}

// ResolveInstanceID returns the id responses carry: the configured one, else
// the EC2 instance id from IMDSv2 (within the IMDS timeout), else the
// hostname. Unlike the agent, demoapp may fall back: it only labels answers,
// and a demo on a laptop should still start.
func ResolveInstanceID(ctx context.Context, cfg Config) (Identity, error) {
	if cfg.InstanceID != "" {
		return Identity{ID: cfg.InstanceID, Source: SourceFlag}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.IMDSTimeout)
	defer cancel()
	// The SDK's retries would outlive a short timeout on hosts without IMDS.
	client := imds.New(imds.Options{Endpoint: cfg.IMDSEndpoint, Retryer: aws.NopRetryer{}})
	out, imdsErr := client.GetMetadata(ctx, &imds.GetMetadataInput{Path: "instance-id"})
	if imdsErr == nil {
		b, rerr := io.ReadAll(out.Content)
		out.Content.Close()
		id := strings.TrimSpace(string(b))
		switch {
		case rerr != nil:
			imdsErr = rerr
		case id == "":
			imdsErr = errors.New("empty instance-id")
		default:
			return Identity{ID: id, Source: SourceIMDS}, nil
		}
	}
	host, err := os.Hostname()
	if err != nil {
		return Identity{}, fmt.Errorf("instance id: no --instance-id, IMDS failed (%v) and hostname failed: %w", imdsErr, err)
	}
	return Identity{ID: host, Source: SourceHostname, IMDSErr: imdsErr}, nil
}
