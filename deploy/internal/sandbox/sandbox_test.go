package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/deploy/internal/devpki"
)

func TestOptionsValidate(t *testing.T) {
	bin := t.TempDir()
	for _, b := range []string{"shoal-localcloud", "shoal-coordinator", "shoal-lb", "shoal-agent", "shoal-demoapp"} {
		if err := os.WriteFile(filepath.Join(bin, b), nil, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"defaults", func(*Options) {}, ""},
		{"no bin dir", func(o *Options) { o.BinDir = "" }, "bin dir: required"},
		{"missing binary", func(o *Options) { o.BinDir = t.TempDir() }, "shoal-localcloud missing"},
		{"too many nodes", func(o *Options) { o.Nodes = 10 }, "nodes (10) must be between 1 and 9"},
		{"slow alarms", func(o *Options) { o.AlarmInterval = time.Minute }, "alarm interval (1m0s) must be > 0 and <= 10s"},
		{"zero options", func(o *Options) { *o = Options{BinDir: bin} }, "nodes (0)"},
		{"no grace", func(o *Options) { o.TerminateGrace = 0 }, "terminate grace"},
		{"negative warm boot", func(o *Options) { o.WarmBootDelay = -time.Second }, "warm boot delay (-1s) must be >= 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := DefaultOptions()
			opts.BinDir = bin
			tc.edit(&opts)
			before := fmt.Sprintf("%+v", opts)
			err := opts.Validate()
			if after := fmt.Sprintf("%+v", opts); after != before {
				t.Fatalf("Validate changed the options:\n%s\n%s", before, after)
			}
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestDefaultsPickLoopbackPrefix(t *testing.T) {
	o := DefaultOptions()
	parts := strings.Split(o.InstanceIPPrefix, ".")
	if len(parts) != 3 || parts[0] != "127" || parts[1] == "0" {
		t.Fatalf("InstanceIPPrefix = %q, want 127.X.Y away from 127.0", o.InstanceIPPrefix)
	}
	if o.Nodes != 3 || o.DrainTimeout != 10*time.Second {
		t.Fatalf("defaults not applied: %+v", o)
	}
}

func TestPoll(t *testing.T) {
	t.Run("succeeds after retries", func(t *testing.T) {
		n := 0
		err := Poll(context.Background(), 5*time.Second, "third call", func(context.Context) error {
			if n++; n < 3 {
				return errors.New("not yet")
			}
			return nil
		})
		if err != nil || n != 3 {
			t.Fatalf("Poll = %v after %d calls, want nil after 3", err, n)
		}
	})
	t.Run("reports the last attempt the deadline did not cut", func(t *testing.T) {
		err := Poll(context.Background(), 300*time.Millisecond, "slow", func(ctx context.Context) error {
			select {
			case <-ctx.Done():
				return errors.New("killed")
			case <-time.After(100 * time.Millisecond):
				return errors.New("desired is 3")
			}
		})
		if err == nil || !strings.Contains(err.Error(), "desired is 3") {
			t.Fatalf("Poll = %v, want the last complete attempt's error", err)
		}
	})
	t.Run("gives up at the deadline naming the wait", func(t *testing.T) {
		err := Poll(context.Background(), 200*time.Millisecond, "never", func(context.Context) error { return errors.New("still no") })
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "waiting for never") || !strings.Contains(err.Error(), "still no") {
			t.Fatalf("Poll = %v", err)
		}
	})
	t.Run("a final error ends the wait at once", func(t *testing.T) {
		n := 0
		gone := errors.New("n1 exited: exit status 1")
		err := Poll(context.Background(), time.Minute, "n1 /healthz", func(context.Context) error {
			n++
			return Final(gone)
		})
		if n != 1 || !errors.Is(err, gone) || errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "waiting for n1 /healthz") {
			t.Fatalf("Poll = %v after %d calls, want the final error after 1", err, n)
		}
	})
}

// TestLogTail: an exited process's error carries its log's last lines.
func TestLogTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n1.log")
	var b strings.Builder
	for i := range 50 {
		fmt.Fprintf(&b, "line %d\n", i)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	got := logTail(path, 3, 4096)
	if got != "    line 47\n    line 48\n    line 49" {
		t.Fatalf("logTail = %q", got)
	}
	if got := logTail(filepath.Join(t.TempDir(), "missing.log"), 3, 4096); !strings.Contains(got, "log unreadable") {
		t.Fatalf("logTail of a missing file = %q", got)
	}
}

func TestAWSEnvDropsCallerAWSSettings(t *testing.T) {
	t.Setenv("AWS_PROFILE", "prod")
	t.Setenv("SHOAL_ADDR", "10.0.0.1:7400")
	env := strings.Join(awsEnv("http://127.0.0.1:1"), "\n")
	if strings.Contains(env, "AWS_PROFILE=prod") || strings.Contains(env, "SHOAL_ADDR") {
		t.Fatalf("caller settings leaked into the sandbox env:\n%s", env)
	}
	if !strings.Contains(env, "AWS_ENDPOINT_URL=http://127.0.0.1:1") {
		t.Fatalf("endpoint missing:\n%s", env)
	}
}

func TestLeftoversFindsMarkedProcessesOnly(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	exe, err := filepath.EvalSymlinks(sleep)
	if err != nil {
		t.Fatal(err)
	}
	marker := markerVar + "=" + t.TempDir()
	marked := exec.Command(sleep, "30")
	marked.Env = append(os.Environ(), marker)
	unmarked := exec.Command(sleep, "30")
	for _, c := range []*exec.Cmd{marked, unmarked} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Process.Kill(); _ = c.Wait() })
	}
	pids := func(binDir string) map[int]bool {
		left, err := leftovers(binDir, marker)
		if err != nil {
			t.Fatal(err)
		}
		out := map[int]bool{}
		for _, l := range left {
			out[l.PID] = true
		}
		return out
	}
	tests := []struct {
		name   string
		binDir string
		want   bool
	}{
		{"any executable", "", true},
		{"executable under the bin dir", filepath.Dir(exe), true},
		{"executable elsewhere", t.TempDir(), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := pids(tc.binDir)
			if got[marked.Process.Pid] != tc.want {
				t.Errorf("marked process listed = %v, want %v", got[marked.Process.Pid], tc.want)
			}
			if got[unmarked.Process.Pid] {
				t.Error("unmarked process listed")
			}
		})
	}
	_ = marked.Process.Kill()
	_ = marked.Wait()
	if pids("")[marked.Process.Pid] {
		t.Error("a reaped process is still listed")
	}
}

// TestSecureWiring: a secure sandbox hands its CA to the golden agent (with
// a data dir per instance), its lb certificate to shoal-lb, and the
// operator's credentials to the CLI and to the exports; an insecure one
// says --insecure and hands out no credentials.
func TestSecureWiring(t *testing.T) {
	dir := "/tmp/sb dir"
	sec := &security{
		pki:   &devpki.PKI{Dir: dir + "/tls", CACert: dir + "/tls/shoal-ca.pem", CAKey: dir + "/tls/shoal-ca-key.pem"},
		lb:    devpki.Pair{Cert: dir + "/tls/shoal-lb-lb.pem", Key: dir + "/tls/shoal-lb-lb-key.pem"},
		creds: devpki.Creds{CACert: dir + "/tls/shoal-ca.pem", Pair: devpki.Pair{Cert: "/c/op.pem", Key: "/c/op-key.pem"}, Token: "tok"},
	}
	node := &Node{ID: "n1", RPCAddr: "127.0.0.1:7401", AgentAddr: "127.0.0.1:7404"}
	tests := []struct {
		name       string
		sec        *security
		agent, lb  []string
		env        []string
		exports    []string
		notInAgent string
	}{
		{
			name:       "secure",
			sec:        sec,
			agent:      []string{"--ca-cert '/tmp/sb dir/tls/shoal-ca.pem'", "--data-dir '/tmp/sb dir/data/agents'/$LOCALCLOUD_INSTANCE_ID"},
			lb:         []string{"--ca-cert", dir + "/tls/shoal-ca.pem", "--cert", dir + "/tls/shoal-lb-lb.pem", "--key", dir + "/tls/shoal-lb-lb-key.pem"},
			env:        []string{"SHOAL_CACERT=/tmp/sb dir/tls/shoal-ca.pem", "SHOAL_CLIENT_CERT=/c/op.pem", "SHOAL_CLIENT_KEY=/c/op-key.pem", "SHOAL_TOKEN=tok"},
			exports:    []string{"export SHOAL_ADDR=127.0.0.1:7401", "export SHOAL_CACERT='/tmp/sb dir/tls/shoal-ca.pem'", "export SHOAL_TOKEN=tok"},
			notInAgent: "--insecure",
		},
		{
			name:       "insecure",
			agent:      []string{"--insecure"},
			lb:         []string{"--insecure"},
			exports:    []string{"export SHOAL_ADDR=127.0.0.1:7401"},
			notInAgent: "--ca-cert",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := &Sandbox{Dir: dir, opts: Options{BinDir: "/b", Insecure: tc.sec == nil}, sec: tc.sec, nodes: []*Node{node}, CloudURL: "http://127.0.0.1:9"}
			ud := s.GoldenUserData(50)
			for _, w := range tc.agent {
				if !strings.Contains(ud, w) {
					t.Errorf("golden user data lacks %q:\n%s", w, ud)
				}
			}
			if strings.Contains(ud, tc.notInAgent) {
				t.Errorf("golden user data has %q:\n%s", tc.notInAgent, ud)
			}
			if got := s.lbTLSFlags(); strings.Join(got, " ") != strings.Join(tc.lb, " ") {
				t.Errorf("lb flags = %q, want %q", got, tc.lb)
			}
			env := strings.Join(s.CLIEnv(), "\n")
			for _, w := range tc.env {
				if !strings.Contains(env, w) {
					t.Errorf("CLI env lacks %q", w)
				}
			}
			if tc.sec == nil && strings.Contains(env, "SHOAL_TOKEN=") {
				t.Error("an insecure sandbox's CLI env carries a token")
			}
			ex := strings.Join(s.Exports(), "\n")
			for _, w := range tc.exports {
				if !strings.Contains(ex, w) {
					t.Errorf("exports lack %q:\n%s", w, ex)
				}
			}
			if !strings.Contains(ex, "AWS_ENDPOINT_URL=http://127.0.0.1:9") {
				t.Errorf("exports lack the local cloud:\n%s", ex)
			}
		})
	}
}
