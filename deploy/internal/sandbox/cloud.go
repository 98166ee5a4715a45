package sandbox

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/shoal-dev/shoal/deploy/internal/devpki"
)

// Instance is one entry of the local cloud's /_localcloud/instances.
type Instance struct {
	ID        string `json:"id"`
	State     string `json:"state"`
	Group     string `json:"group"`
	Lifecycle string `json:"lifecycle"`
	Health    string `json:"health"`
	PrivateIP string `json:"privateIp"`
	AZ        string `json:"availabilityZone"`
	SubnetID  string `json:"subnetId"`
	ImageID   string `json:"imageId"`
	// PID is the instance's process group id; 0 once it exited.
	PID int `json:"pid"`
}

// Instances lists every instance the local cloud knows.
func (s *Sandbox) Instances(ctx context.Context) ([]Instance, error) {
	var out []Instance
	err := s.hook(ctx, http.MethodGet, "/_localcloud/instances", &out)
	return out, err
}

// AdvanceClock moves the local cloud's clock forward by d; it then
// reconciles and evaluates alarms at once.
func (s *Sandbox) AdvanceClock(ctx context.Context, d time.Duration) error {
	return s.hook(ctx, http.MethodPost, "/_localcloud/clock?advance="+url.QueryEscape(d.String()), nil)
}

// EvaluateAlarms makes the local cloud evaluate every alarm now.
func (s *Sandbox) EvaluateAlarms(ctx context.Context) error {
	return s.hook(ctx, http.MethodPost, "/_localcloud/alarms/evaluate", nil)
}

// AWSConfig is an aws-sdk-go-v2 config pointed at the local cloud.
func (s *Sandbox) AWSConfig(ctx context.Context) (aws.Config, error) {
	return config.LoadDefaultConfig(ctx,
		config.WithRegion("us-east-1"),
		config.WithBaseEndpoint(s.CloudURL),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("sandbox", "sandbox", "")),
	)
}

// Subnets returns the default VPC's subnet ids, sorted.
func (s *Sandbox) Subnets(ctx context.Context) ([]string, error) {
	cfg, err := s.AWSConfig(ctx)
	if err != nil {
		return nil, err
	}
	out, err := ec2.NewFromConfig(cfg).DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
	if err != nil {
		return nil, fmt.Errorf("describe subnets: %w", err)
	}
	var ids []string
	for _, sn := range out.Subnets {
		ids = append(ids, aws.ToString(sn.SubnetId))
	}
	sort.Strings(ids)
	return ids, nil
}

// GoldenAppPort is the port demoapp serves on in every instance.
const GoldenAppPort = 8080

// GoldenUserData is the golden instance's boot script: demoapp, with an
// agent scraping its utilisation. On the standalone golden instance the agent
// exits (no group); instances launched from its image enroll with their
// identity document (the agent trusts the sandbox's CA and keeps its key
// under data/agents/<instance-id>) and stream.
func (s *Sandbox) GoldenUserData(capacity int) string {
	b := s.opts.BinDir
	agentHTTP := ""
	if s.opts.AgentHTTPPort != 0 {
		agentHTTP = fmt.Sprintf(" --http-addr $IP:%d", s.opts.AgentHTTPPort)
	}
	return strings.Join([]string{
		"#!/bin/sh",
		"B=" + devpki.ShellQuote(b) + "; IP=$LOCALCLOUD_PRIVATE_IP",
		fmt.Sprintf("$B/shoal-demoapp --listen $IP:%d --capacity %d --log-level warn &", GoldenAppPort, capacity),
		"DEMO=$!",
		fmt.Sprintf("$B/shoal-agent --scope cgroup --scope-pid $DEMO --scrape http://$IP:%d/metrics --metric demoapp_utilization=util --health-http http://$IP:%d/healthz --interval 1s --log-level warn%s %s", GoldenAppPort, GoldenAppPort, agentHTTP, s.agentFlags()),
		"wait",
		"",
	}, "\n")
}

// RunGolden launches the golden instance (image ami-localbase, the first
// subnet) running demoapp with the given per-instance capacity (requests/s),
// and waits until it is running and demoapp answers /healthz.
func (s *Sandbox) RunGolden(ctx context.Context, capacity int) (string, error) {
	cfg, err := s.AWSConfig(ctx)
	if err != nil {
		return "", err
	}
	subnets, err := s.Subnets(ctx)
	if err != nil {
		return "", err
	}
	if len(subnets) == 0 {
		return "", fmt.Errorf("run golden: the local cloud has no subnet")
	}
	out, err := ec2.NewFromConfig(cfg).RunInstances(ctx, &ec2.RunInstancesInput{
		ImageId:      aws.String("ami-localbase"),
		MinCount:     aws.Int32(1),
		MaxCount:     aws.Int32(1),
		SubnetId:     aws.String(subnets[0]),
		InstanceType: ec2types.InstanceTypeT3Micro,
		UserData:     aws.String(base64.StdEncoding.EncodeToString([]byte(s.GoldenUserData(capacity)))),
		TagSpecifications: []ec2types.TagSpecification{{
			ResourceType: ec2types.ResourceTypeInstance,
			Tags:         []ec2types.Tag{{Key: aws.String("Name"), Value: aws.String("shoal-golden")}},
		}},
	})
	if err != nil {
		return "", fmt.Errorf("run golden: %w", err)
	}
	id := aws.ToString(out.Instances[0].InstanceId)
	s.mu.Lock()
	s.Golden = id
	s.mu.Unlock()
	err = s.poll(ctx, "golden instance "+id+" running with demoapp healthy", func(ctx context.Context) error {
		insts, err := s.Instances(ctx)
		if err != nil {
			return err
		}
		for _, in := range insts {
			if in.ID != id {
				continue
			}
			if in.State != "running" {
				return fmt.Errorf("state %s", in.State)
			}
			return s.httpOK(ctx, fmt.Sprintf("http://%s:%d/healthz", in.PrivateIP, GoldenAppPort))
		}
		return fmt.Errorf("instance %s not listed", id)
	})
	return id, err
}
