package demoapp

import (
	"context"
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

// ResolveInstanceID returns the id responses carry: the configured one, else
// the EC2 instance id from IMDSv2 (within the IMDS timeout), else the
// hostname. Unlike the agent, demoapp may fall back: it only labels answers,
// and a demo on a laptop should still start.
func ResolveInstanceID(ctx context.Context, cfg Config) (id, source string, err error) {
	if cfg.InstanceID != "" {
		return cfg.InstanceID, SourceFlag, nil
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.IMDSTimeout)
	defer cancel()
	// The SDK's retries would outlive a short timeout on hosts without IMDS.
	client := imds.New(imds.Options{Endpoint: cfg.IMDSEndpoint, Retryer: aws.NopRetryer{}})
	out, imdsErr := client.GetMetadata(ctx, &imds.GetMetadataInput{Path: "instance-id"})
	if imdsErr == nil {
		b, rerr := io.ReadAll(out.Content)
		out.Content.Close()
		if id := strings.TrimSpace(string(b)); rerr == nil && id != "" {
			return id, SourceIMDS, nil
		}
	}
	host, err := os.Hostname()
	if err != nil {
		return "", "", fmt.Errorf("instance id: no --instance-id, IMDS failed (%v) and hostname failed: %w", imdsErr, err)
	}
	return host, SourceHostname, nil
}
