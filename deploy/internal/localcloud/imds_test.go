package localcloud

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
)

func TestInstanceMetadataThroughSDK(t *testing.T) {
	dir := t.TempDir()
	tc := startCloud(t, nil)
	tc.template(t, "web", BaseImageID, fmt.Sprintf(`echo "$AWS_ENDPOINT_URL" > %s/aws; echo "$AWS_EC2_METADATA_SERVICE_ENDPOINT" > %s/endpoint; exec sleep 600`, dir, dir))
	tc.group(t, "meta", "web", 1, 1, 1, func(in *autoscaling.CreateAutoScalingGroupInput) {
		in.Tags = []astypes.Tag{{Key: aws.String("role"), Value: aws.String("api"), PropagateAtLaunch: aws.Bool(true)}}
	})
	inst := tc.waitInService(t, "meta", 1)[0]
	id := aws.ToString(inst.InstanceId)
	var endpoint string
	tc.eventually(t, 10*time.Second, func() error {
		b, err := os.ReadFile(filepath.Join(dir, "endpoint"))
		endpoint = strings.TrimSpace(string(b))
		if err == nil && endpoint == "" {
			err = fmt.Errorf("empty endpoint")
		}
		return err
	})
	var ip string
	for _, in := range tc.instances(t) {
		if in.ID == id {
			ip = in.IP
		}
	}
	if !strings.HasPrefix(endpoint, "http://"+ip+":") {
		t.Fatalf("instance endpoint %q is not on the instance's own address %s", endpoint, ip)
	}

	// The process's view: the SDK's IMDS client configured from the same
	// environment variable the instance received.
	t.Setenv("AWS_EC2_METADATA_DISABLED", "false")
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", endpoint)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	client := imds.NewFromConfig(cfg)
	get := func(path string) string {
		t.Helper()
		out, err := client.GetMetadata(ctx, &imds.GetMetadataInput{Path: path})
		if err != nil {
			t.Fatalf("GetMetadata %s: %v", path, err)
		}
		defer out.Content.Close()
		b, _ := io.ReadAll(out.Content)
		return string(b)
	}
	cases := []struct{ path, want string }{
		{"instance-id", id},
		{"local-ipv4", ip},
		{"placement/availability-zone", aws.ToString(inst.AvailabilityZone)},
		{"ami-id", BaseImageID},
		{"tags/instance/aws:autoscaling:groupName", "meta"},
		{"tags/instance/role", "api"},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			if got := get(c.path); got != c.want {
				t.Fatalf("%s = %q, want %q", c.path, got, c.want)
			}
		})
	}
	if keys := get("tags/instance"); !strings.Contains(keys, "aws:autoscaling:groupName") || !strings.Contains(keys, "role") {
		t.Fatalf("tags/instance = %q", keys)
	}
	doc, err := client.GetInstanceIdentityDocument(ctx, &imds.GetInstanceIdentityDocumentInput{})
	if err != nil {
		t.Fatal(err)
	}
	if doc.InstanceID != id || doc.PrivateIP != ip || doc.Region != "us-east-1" || doc.AvailabilityZone != aws.ToString(inst.AvailabilityZone) {
		t.Fatalf("identity document %+v", doc.InstanceIdentityDocument)
	}
	region, err := client.GetRegion(ctx, &imds.GetRegionInput{})
	if err != nil || region.Region != "us-east-1" {
		t.Fatalf("GetRegion = %v, %v", region, err)
	}
	ud, err := client.GetUserData(ctx, &imds.GetUserDataInput{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(ud.Content)
	if !strings.Contains(string(b), "AWS_EC2_METADATA_SERVICE_ENDPOINT") {
		t.Fatalf("user-data = %q", b)
	}

	// Inside an instance the default credential chain finds the instance
	// role in IMDS, and AWS_ENDPOINT_URL points at the local cloud: an AWS
	// call works with no credentials in the environment, as on EC2.
	awsURL, err := os.ReadFile(filepath.Join(dir, "aws"))
	if err != nil || strings.TrimSpace(string(awsURL)) != tc.srv.URL() {
		t.Fatalf("instance AWS_ENDPOINT_URL = %q (%v), want %s", awsURL, err, tc.srv.URL())
	}
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	roleCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := roleCfg.Credentials.Retrieve(ctx)
	if err != nil || creds.Source != "EC2RoleProvider" || !strings.HasPrefix(creds.AccessKeyID, "ASIA") || creds.SessionToken == "" {
		t.Fatalf("instance role credentials = %+v, %v", creds, err)
	}
	if _, err := autoscaling.NewFromConfig(roleCfg).DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{}); err != nil {
		t.Fatalf("AWS call with instance role credentials: %v", err)
	}
}

func TestIMDSRequiresToken(t *testing.T) {
	v := imdsView{InstanceID: "i-0123456789abcdef0", IP: "127.0.77.9"}
	s, err := startIMDS("127.0.0.1", func() (imdsView, bool) { return v, true })
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	resp, err := httpGet(s.endpoint+"latest/meta-data/instance-id", "")
	if err != nil {
		t.Fatal(err)
	}
	if resp != 401 {
		t.Fatalf("IMDSv1 request without token got %d, want 401", resp)
	}
}
