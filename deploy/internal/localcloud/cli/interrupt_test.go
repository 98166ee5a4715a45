package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/deploy/internal/localcloud"
)

func TestInterruptRejectsBadFlags(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no instance", []string{"interrupt"}, "instance"},
		{"not an instance id", []string{"interrupt", "--instance", "web-1"}, "instance"},
		{"notice too short", []string{"interrupt", "--instance", "i-1", "--in", "10ms"}, "in (10ms)"},
		{"negative rebalance-first", []string{"interrupt", "--instance", "i-1", "--rebalance-first", "-1s"}, "rebalance-first"},
		{"rebalance-first with rebalance-only", []string{"interrupt", "--instance", "i-1", "--rebalance-only", "--rebalance-first", "5s"}, "rebalance-only"},
		{"endpoint without scheme", []string{"interrupt", "--instance", "i-1", "--endpoint", "127.0.0.1:4566"}, "endpoint"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := Main(context.Background(), c.args, &out, &errb, func(string) string { return "" }); code != 1 {
				t.Fatalf("exit code %d, want 1", code)
			}
			if !strings.Contains(errb.String(), c.want) {
				t.Fatalf("stderr %q does not mention %q", errb.String(), c.want)
			}
		})
	}
}

// TestInterruptAgainstRunningCloud: the subcommand reaches a running local
// cloud through --endpoint and schedules what it says it did.
func TestInterruptAgainstRunningCloud(t *testing.T) {
	cfg := localcloud.DefaultConfig()
	cfg.Addr, cfg.InstanceIPPrefix, cfg.InstanceLogDir = "127.0.0.1:0", "127.0.78", t.TempDir()
	cfg.TerminateGrace = 500 * time.Millisecond
	srv, err := localcloud.NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	insts, err := srv.Cloud().RunInstances(localcloud.RunInput{ImageID: localcloud.BaseImageID, MinCount: 1, MaxCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	id := insts[0].ID
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := Main(context.Background(), append([]string{"interrupt", "--endpoint", srv.URL()}, args...), &out, &errb, func(string) string { return "" })
		return code, out.String(), errb.String()
	}
	code, out, errs := run("--instance", id, "--in", "40s", "--rebalance-first", "10s")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var got localcloud.Interruption
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("stdout %q: %v", out, err)
	}
	reb, _ := time.Parse(time.RFC3339, got.RebalanceTime)
	notice, _ := time.Parse(time.RFC3339, got.NoticeTime)
	end, _ := time.Parse(time.RFC3339, got.TerminationTime)
	if got.InstanceID != id || notice.Sub(reb) != 10*time.Second || end.Sub(notice) != 40*time.Second {
		t.Fatalf("scheduled %+v, want the notice 10s after the recommendation and termination 40s after the notice", got)
	}
	evs, _, _ := srv.Cloud().Events("", "")
	if len(evs) != 1 || evs[0].DetailType != "EC2 Instance Rebalance Recommendation" || evs[0].Detail["instance-id"] != id {
		t.Fatalf("events %+v, want the rebalance recommendation", evs)
	}
	// The local cloud's refusal reaches the user.
	if code, _, errs := run("--instance", id); code != 1 || !strings.Contains(errs, "409") || !strings.Contains(errs, "already has an interruption notice") {
		t.Fatalf("second interruption: exit %d, stderr %q", code, errs)
	}
	if code, _, errs := run("--instance", "i-0000000000000000f", "--rebalance-only"); code != 1 || !strings.Contains(errs, "404") {
		t.Fatalf("unknown instance: exit %d, stderr %q", code, errs)
	}
}
