package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/coordinator/internal/cluster"
	"github.com/shoal-dev/shoal/coordinator/internal/cluster/clustertest"
	"github.com/shoal-dev/shoal/coordinator/internal/server"
	"github.com/shoal-dev/shoal/coordinator/internal/view"
)

// startNode runs a one-node cluster with its gRPC server on a loopback port
// and returns the address for --address.
func startNode(t *testing.T) string {
	t.Helper()
	tc := clustertest.Make(t, 1, clustertest.Options{
		TCP:    true,
		Config: func(_ int, c *cluster.Config) { c.NodeID = "n1" },
		Serve: func(t testing.TB, n *cluster.Node, lis net.Listener) func() {
			srv, err := server.New(server.Config{Node: n, Logger: clustertest.Quiet()})
			if err != nil {
				t.Fatal(err)
			}
			go func() { _ = srv.Serve(lis) }()
			return func() { srv.Stop(time.Second) }
		},
	})
	return tc.Nodes[0].RPCAddr()
}

// run executes one command line and returns stdout and the one-line error.
func run(t *testing.T, addr string, args ...string) (string, string) {
	t.Helper()
	root := Root()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(io.Discard)
	root.SetArgs(append(args, "--address", addr))
	if err := root.Execute(); err != nil {
		line := errorLine(err)
		if strings.Contains(line, "\n") {
			t.Fatalf("error is not one line: %q", line)
		}
		return out.String(), line
	}
	return out.String(), ""
}

func TestCommands(t *testing.T) {
	addr := startNode(t)
	mustRun := func(args ...string) string {
		t.Helper()
		out, e := run(t, addr, args...)
		if e != "" {
			t.Fatalf("%v: %s", args, e)
		}
		return out
	}
	out := mustRun("fleet", "create", "web", "--asg", "web-asg", "--min", "1", "--max", "5", "--app-port", "8080", "-o", "json")
	var f view.Fleet
	if err := json.Unmarshal([]byte(out), &f); err != nil || f.ASG != "web-asg" || f.Desired != 1 || f.AppPort != 8080 {
		t.Fatalf("create JSON = %s (%v)", out, err)
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"min above max", []string{"fleet", "create", "x", "--asg", "x", "--min", "5", "--max", "3"}, "min (5) must be <= max (3)"},
		{"negative", []string{"fleet", "create", "x", "--asg", "x", "--min", "-2", "--max", "3"}, "min (-2) must be >= 0"},
		{"duplicate", []string{"fleet", "create", "web", "--asg", "y", "--max", "3"}, `name: fleet "web" already exists`},
		{"group in use", []string{"fleet", "create", "w2", "--asg", "web-asg", "--max", "3"}, `asg: group "web-asg" already used by fleet "web"`},
		{"unknown fleet", []string{"fleet", "get", "nope"}, `fleet "nope": unknown fleet`},
		{"missing name", []string{"fleet", "get"}, "NAME: required"},
		{"missing asg", []string{"fleet", "create", "z", "--max", "3"}, `"asg" not set`},
		{"bad output", []string{"status", "-o", "yaml"}, `output ("yaml"): must be table or json`},
		{"update nothing", []string{"fleet", "update", "web"}, "nothing to change"},
		{"bad alarm", []string{"fleet", "update", "web", "--alarm-action", "sns"}, `alarm_actions[0] ("sns"): must be an ARN`},
		{"bad policy", []string{"policy", "set", "web", "--metric", "cpu", "--target", "0"}, "policy.target_tracking[0].target: must be > 0"},
		{"bad step", []string{"policy", "set", "web", "--step-metric", "cpu", "--step", "1:2:double:3"}, `step[0] ("1:2:double:3"): adjustment_type: unknown value "double"`},
		{"file with flags", []string{"policy", "set", "web", "--file", "p.json", "--metric", "cpu"}, "file: give the whole policy in the file"},
		{"scale beyond max", []string{"scale", "web", "--desired", "9"}, "desired (9) must be between min (1) and max (5)"},
		{"remove unknown peer", []string{"raft", "remove-peer", "--id", "ghost"}, `id ("ghost")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, e := run(t, addr, tc.args...)
			if !strings.Contains(e, tc.want) {
				t.Fatalf("error %q, want it to contain %q", e, tc.want)
			}
		})
	}

	mustRun("fleet", "update", "web", "--max", "8", "--alarm-action", "arn:aws:sns:us-east-1:1:a", "--alarm-action", "arn:aws:sns:us-east-1:1:b")
	mustRun("policy", "set", "web", "--metric", "cpu", "--target", "50", "--scale-in-window", "1m", "--step-metric", "mem", "--step", "80::change_in_capacity:2")
	var pol view.Policy
	if err := json.Unmarshal([]byte(mustRun("policy", "get", "web", "-o", "json")), &pol); err != nil || len(pol.TargetTracking) != 1 || len(pol.StepScaling) != 1 || pol.StepScaling[0].Steps[0].Upper != nil {
		t.Fatalf("policy = %+v, %v", pol, err)
	}
	pfile := filepath.Join(t.TempDir(), "policy.json")
	if err := os.WriteFile(pfile, []byte(mustRun("policy", "get", "web", "-o", "json")), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun("policy", "set", "web", "--file", pfile)
	mustRun("pause", "web")
	mustRun("scale", "web", "--desired", "3")
	mustRun("scale", "web", "--desired", "4", "--reason", "load test")
	var ds []view.Decision
	if err := json.Unmarshal([]byte(mustRun("decisions", "web", "-o", "json")), &ds); err != nil || len(ds) != 2 || ds[1].To != 4 || ds[1].Reason != "load test" || ds[1].Status != "pending" {
		t.Fatalf("decisions = %+v, %v", ds, err)
	}

	var list []view.Fleet
	if err := json.Unmarshal([]byte(mustRun("fleet", "list", "-o", "json")), &list); err != nil || len(list) != 1 || !list[0].Paused || len(list[0].AlarmActions) != 2 || list[0].Max != 8 {
		t.Fatalf("list = %+v, %v", list, err)
	}
	if out := mustRun("instances", "-o", "json"); strings.TrimSpace(out) != "[]" {
		t.Fatalf("instances = %q, want []", out)
	}
	var st view.Status
	if err := json.Unmarshal([]byte(mustRun("status", "-o", "json")), &st); err != nil || st.LeaderID != "n1" || len(st.Nodes) != 1 || st.Nodes[0].Role != "leader" || st.AppliedIndex == 0 {
		t.Fatalf("status = %+v, %v", st, err)
	}

	file := filepath.Join(t.TempDir(), "state.snap")
	mustRun("snapshot", "save", file)
	mustRun("fleet", "delete", "web")
	if _, e := run(t, addr, "fleet", "get", "web"); !strings.Contains(e, "unknown fleet") {
		t.Fatalf("after delete: %q", e)
	}
	mustRun("snapshot", "restore", file)
	if err := json.Unmarshal([]byte(mustRun("fleet", "get", "web", "-o", "json")), &f); err != nil || !f.Paused || f.Max != 8 {
		t.Fatalf("after restore = %+v, %v", f, err)
	}
	mustRun("resume", "web")
	if out := mustRun("fleet", "get", "web"); !strings.Contains(out, "paused:") || !strings.Contains(out, "false") {
		t.Fatalf("table after resume:\n%s", out)
	}
}

func TestServeFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no node id", []string{"serve", "--data-dir", "d", "--raft-addr", "127.0.0.1:1", "--rpc-addr", "127.0.0.1:2", "--http-addr", "127.0.0.1:3"}, "node-id: required"},
		{"no http", []string{"serve", "--node-id", "n", "--data-dir", "d", "--raft-addr", "127.0.0.1:1", "--rpc-addr", "127.0.0.1:2"}, "http-addr: required"},
		{"wildcard without advertise", []string{"serve", "--node-id", "n", "--data-dir", "d", "--raft-addr", "0.0.0.0:7300", "--rpc-addr", "127.0.0.1:2", "--http-addr", "127.0.0.1:3"}, "advertise-raft"},
		{"wildcard rpc without advertise", []string{"serve", "--node-id", "n", "--data-dir", "d", "--raft-addr", "127.0.0.1:7300", "--rpc-addr", "0.0.0.0:7400", "--http-addr", "127.0.0.1:3"}, "advertise-rpc"},
		{"bootstrap and join", []string{"serve", "--node-id", "n", "--data-dir", "d", "--raft-addr", "127.0.0.1:7300", "--rpc-addr", "127.0.0.1:7400", "--http-addr", "127.0.0.1:3", "--bootstrap", "--join", "127.0.0.1:7401"}, "give one, not both"},
		{"bad log store", []string{"serve", "--node-id", "n", "--data-dir", "d", "--raft-addr", "127.0.0.1:7300", "--rpc-addr", "127.0.0.1:7400", "--http-addr", "127.0.0.1:3", "--log-store", "sqlite"}, `log-store ("sqlite")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, e := run(t, "127.0.0.1:1", tc.args...)
			if !strings.Contains(e, tc.want) {
				t.Fatalf("error %q, want it to contain %q", e, tc.want)
			}
		})
	}
}
