//go:build multiprocess

package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/shoal-dev/shoal/deploy/testkit"
)

// localcloud is one shoal-localcloud process under test.
type localcloud struct {
	proc *testkit.Proc
	url  string
}

func startLocalcloud(t *testing.T, extra ...string) *localcloud {
	t.Helper()
	addr := testkit.FreeAddr(t)
	args := append([]string{"serve", "--addr", addr, "--boot-delay", "100ms", "--terminate-grace", "500ms", "--instance-ip-prefix", "127.0.79", "--log-level", "warn"}, extra...)
	p := testkit.Start(t, testkit.Binary(t, "shoal-localcloud"), args, testkit.Options{})
	lc := &localcloud{proc: p, url: "http://" + addr}
	testkit.WaitHTTP(t, lc.url+"/_localcloud/health", 10*time.Second)
	return lc
}

type lcInstance struct {
	ID    string `json:"id"`
	PID   int    `json:"pid"`
	State string `json:"state"`
	Group string `json:"group"`
}

func (lc *localcloud) instances(t *testing.T) []lcInstance {
	t.Helper()
	resp, err := http.Get(lc.url + "/_localcloud/instances")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []lcInstance
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

// group creates a launch template and a group through the real SDK, and
// waits until desired instances have processes.
func (lc *localcloud) group(t *testing.T, name string, desired int32, script string) []lcInstance {
	t.Helper()
	t.Setenv("AWS_ENDPOINT_URL", lc.url)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDE2E")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if script != "" {
		if _, err := ec2.NewFromConfig(cfg).CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String(name),
			LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: aws.String("ami-localbase"), UserData: aws.String(base64.StdEncoding.EncodeToString([]byte(script)))}}); err != nil {
			t.Fatal(err)
		}
		sn, err := ec2.NewFromConfig(cfg).DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := autoscaling.NewFromConfig(cfg).CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{AutoScalingGroupName: aws.String(name),
			MinSize: aws.Int32(0), MaxSize: aws.Int32(desired), DesiredCapacity: aws.Int32(desired), VPCZoneIdentifier: sn.Subnets[0].SubnetId,
			LaunchTemplate: &astypes.LaunchTemplateSpecification{LaunchTemplateName: aws.String(name)}}); err != nil {
			t.Fatal(err)
		}
	}
	var running []lcInstance
	testkit.Eventually(t, 15*time.Second, func() error {
		running = nil
		for _, in := range lc.instances(t) {
			if in.Group == name && in.PID > 0 && in.State == "running" {
				running = append(running, in)
			}
		}
		if len(running) != int(desired) {
			return fmt.Errorf("%d running instances with processes, want %d", len(running), desired)
		}
		return nil
	})
	// Should an assertion fail before the local cloud stops them, the
	// instance groups must not outlive the test.
	for _, in := range running {
		pgid := in.PID
		t.Cleanup(func() {
			if err := testkit.KillGroup(pgid, 5*time.Second); err != nil {
				t.Error(err)
			}
		})
	}
	return running
}

// waitGroupsGone waits until nothing of the instances' process groups runs.
// Exited members may linger as zombies until whoever inherited them (init,
// or a subreaper) reaps them; that is not the local cloud's doing, so they
// count as gone (kill(-pgid, 0) would count them alive).
func waitGroupsGone(t *testing.T, insts []lcInstance) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, func() error {
		for _, in := range insts {
			left, err := testkit.Running(in.PID)
			if err != nil {
				return err
			}
			if len(left) > 0 {
				return fmt.Errorf("instance %s process group %d still running: %v", in.ID, in.PID, left)
			}
		}
		return nil
	})
}

// TestLocalcloudKill9LeavesNoOrphan: the parent-death signal and the
// instance init's trap kill every instance process group, including a
// workload that ignores SIGHUP and SIGTERM and has children of its own.
func TestLocalcloudKill9LeavesNoOrphan(t *testing.T) {
	lc := startLocalcloud(t)
	insts := lc.group(t, "stubborn", 3, "trap '' HUP TERM; sleep 600 & sleep 600 & wait")
	if err := lc.proc.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := lc.proc.Wait(10 * time.Second); err == nil {
		t.Fatal("shoal-localcloud exited cleanly after SIGKILL")
	}
	waitGroupsGone(t, insts)
}

// TestLocalcloudSIGTERMStopsInstances: a graceful stop also stops them all.
func TestLocalcloudSIGTERMStopsInstances(t *testing.T) {
	lc := startLocalcloud(t)
	insts := lc.group(t, "web", 2, "exec sleep 600")
	if err := lc.proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := lc.proc.Wait(15 * time.Second); err != nil {
		t.Fatalf("shoal-localcloud after SIGTERM: %v", err)
	}
	waitGroupsGone(t, insts)
}

// TestLocalcloudStateFileRelaunchesGroups: groups survive a restart with
// --state-file and are brought back to desired capacity.
func TestLocalcloudStateFileRelaunchesGroups(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state.json")
	lc := startLocalcloud(t, "--state-file", state)
	first := lc.group(t, "kept", 2, "exec sleep 600")
	if err := lc.proc.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := lc.proc.Wait(15 * time.Second); err != nil {
		t.Fatalf("shoal-localcloud after SIGTERM: %v", err)
	}
	waitGroupsGone(t, first)
	lc2 := startLocalcloud(t, "--state-file", state)
	again := lc2.group(t, "kept", 2, "")
	if again[0].ID == first[0].ID || again[0].ID == first[1].ID {
		t.Fatalf("instances must be new after a restart: %v vs %v", again, first)
	}
}
