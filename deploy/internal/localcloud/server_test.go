package localcloud

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/shoal-dev/shoal/deploy/internal/pgroup"
)

func TestUnsignedRequestsAreRejected(t *testing.T) {
	tc := startCloud(t, nil)
	cases := []struct {
		name, path, contentType, body, auth string
		status                              int
		want                                string
	}{
		{"autoscaling without auth", "/", "application/x-www-form-urlencoded", "Action=DescribeAutoScalingGroups&Version=2011-01-01", "", 403, "<Code>MissingAuthenticationToken</Code>"},
		{"ec2 without auth", "/", "application/x-www-form-urlencoded", "Action=DescribeInstances&Version=2016-11-15", "", 401, "<Code>AuthFailure</Code>"},
		{"ec2 with a malformed signature", "/", "application/x-www-form-urlencoded", "Action=DescribeInstances&Version=2016-11-15",
			"AWS4-HMAC-SHA256 Credential=AKID/20261130/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=nothex", 401, "AuthFailure"},
		{"cloudwatch without auth", cloudwatchPrefix + "ListMetrics", "application/cbor", "", "", 403, "MissingAuthenticationToken"},
		{"unknown service", "/", "application/x-www-form-urlencoded", "Action=Foo&Version=1999-01-01", "", 400, "InvalidAction"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, tc.srv.URL()+c.path, strings.NewReader(c.body))
			req.Header.Set("Content-Type", c.contentType)
			if c.auth != "" {
				req.Header.Set("Authorization", c.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != c.status || !strings.Contains(string(b), c.want) {
				t.Fatalf("got %d %q, want %d containing %q", resp.StatusCode, b, c.status, c.want)
			}
		})
	}
}

func TestDispatchByVersionWhenScopeIsAnotherService(t *testing.T) {
	tc := startCloud(t, nil)
	// A well-formed signature for a service name the local cloud does not
	// know falls back to the Version field.
	form := url.Values{"Action": {"DescribeAvailabilityZones"}, "Version": {ec2Version}}
	req, _ := http.NewRequest(http.MethodPost, tc.srv.URL()+"/", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20261130/us-east-1/custom/aws4_request, SignedHeaders=host;x-amz-date, Signature="+strings.Repeat("ab", 32))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), "<zoneName>us-east-1a</zoneName>") {
		t.Fatalf("got %d %s", resp.StatusCode, b)
	}
}

func TestInjectedAPIFaults(t *testing.T) {
	tc := startCloud(t, nil)
	ctx := ctxT(t)
	noRetry := func(o *autoscaling.Options) { o.RetryMaxAttempts = 1 }
	tc.hook(t, http.MethodPost, "/_localcloud/faults/api?operation=DescribeAutoScalingGroups&code=Throttling&count=2")
	for i := 0; i < 2; i++ {
		_, err := tc.asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{}, noRetry)
		wantCode(t, err, "Throttling")
	}
	if _, err := tc.asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{}, noRetry); err != nil {
		t.Fatalf("third call after 2 injected faults: %v", err)
	}
	// The SDK's default retryer absorbs one throttle.
	tc.hook(t, http.MethodPost, "/_localcloud/faults/api?operation=DescribeInstances&code=RequestLimitExceeded&count=1")
	if _, err := tc.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{}); err != nil {
		t.Fatalf("default retryer did not absorb one RequestLimitExceeded: %v", err)
	}
	tc.hook(t, http.MethodPost, "/_localcloud/faults/api?operation=PutMetricData&code=InternalFailure&count=1")
	_, err := tc.cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String("Shoal"), MetricData: nil}, func(o *cloudwatch.Options) { o.RetryMaxAttempts = 1 })
	wantCode(t, err, "InternalFailure")
}

func TestShutdownLeavesNoProcess(t *testing.T) {
	tc := startCloud(t, nil)
	// A workload that ignores SIGTERM and has a child of its own: only the
	// SIGKILL to the whole process group stops both.
	tc.template(t, "stubborn", BaseImageID, "trap '' TERM; sleep 600 & wait")
	tc.group(t, "g", "stubborn", 2, 2, 2, nil)
	tc.waitInService(t, "g", 2)
	var pgids []int
	for _, in := range tc.instances(t) {
		pgids = append(pgids, in.PID)
	}
	if len(pgids) != 2 {
		t.Fatalf("pids %v", pgids)
	}
	if err := tc.srv.Close(); err != nil {
		t.Fatal(err)
	}
	// Members that exited linger as zombies until init reaps them, and
	// kill(-pgid, 0) counts those; only a running member is left behind.
	for _, pg := range pgids {
		if err := pgroup.WaitGone(pg, 5*time.Second); err != nil {
			t.Fatalf("after Close: %v", err)
		}
	}
}
