package localcloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go"
)

// testCloud is a running local cloud plus SDK clients built the way Shoal
// builds them: config.LoadDefaultConfig with AWS_ENDPOINT_URL.
type testCloud struct {
	srv *Server
	asg *autoscaling.Client
	ec2 *ec2.Client
	cw  *cloudwatch.Client
	cfg aws.Config
}

func startCloud(t *testing.T, mut func(*Config)) *testCloud {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	cfg.BootDelay = 200 * time.Millisecond
	cfg.TerminateGrace = 500 * time.Millisecond
	cfg.ReconcileInterval = 20 * time.Millisecond
	cfg.AlarmInterval = 10 * time.Second
	cfg.InstanceIPPrefix = "127.0.77"
	cfg.InstanceLogDir = t.TempDir()
	if mut != nil {
		mut(&cfg)
	}
	srv, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	t.Setenv("AWS_ENDPOINT_URL", srv.URL())
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDLOCALCLOUDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "any-secret")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ac, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &testCloud{srv: srv, cfg: ac, asg: autoscaling.NewFromConfig(ac), ec2: ec2.NewFromConfig(ac), cw: cloudwatch.NewFromConfig(ac)}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wantCode fails unless err is an AWS API error with the given code.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		t.Fatalf("want API error %s, got %v", code, err)
	}
	if ae.ErrorCode() != code {
		t.Fatalf("want error code %s, got %s (%s)", code, ae.ErrorCode(), ae.ErrorMessage())
	}
}

// eventually checks cond now and after every pass of the cloud's reconcile
// and alarm loops (the moments its state changes on its own) until cond
// returns nil or within has passed.
func (tc *testCloud) eventually(t *testing.T, within time.Duration, cond func() error) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		pass := tc.srv.cloud.nextPass()
		err := cond()
		if err == nil {
			return
		}
		select {
		case <-pass:
		case <-deadline.C:
			t.Fatalf("condition not met within %s: %v", within, err)
		}
	}
}

func (tc *testCloud) hook(t *testing.T, method, path string) []byte {
	t.Helper()
	req, err := http.NewRequest(method, tc.srv.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf strings.Builder
	_, _ = fmt.Fprint(&buf, "")
	b := make([]byte, 1<<20)
	n, _ := resp.Body.Read(b)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b[:n])
	}
	return b[:n]
}

func (tc *testCloud) instances(t *testing.T) []InstanceInfo {
	t.Helper()
	var out []InstanceInfo
	if err := json.Unmarshal(tc.hook(t, http.MethodGet, "/_localcloud/instances"), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func httpGet(url, token string) (int, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	if token != "" {
		req.Header.Set("X-aws-ec2-metadata-token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
