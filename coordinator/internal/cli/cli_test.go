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

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/coordinator/internal/cluster"
	"github.com/shoal-dev/shoal/coordinator/internal/cluster/clustertest"
	"github.com/shoal-dev/shoal/coordinator/internal/node"
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

// run executes one command line against addr and returns stdout and the
// one-line error.
func run(t *testing.T, addr string, args ...string) (string, string) {
	t.Helper()
	return runEnv(t, func(string) string { return "" }, append(args, "--address", addr)...)
}

// runEnv is Main with getenv as the environment.
func runEnv(t *testing.T, getenv func(string) string, args ...string) (string, string) {
	t.Helper()
	var out, errs bytes.Buffer
	if code := Main(t.Context(), args, &out, &errs, getenv); code == 0 {
		if errs.Len() > 0 {
			t.Fatalf("exit 0 with stderr %q", errs.String())
		}
		return out.String(), ""
	}
	line, ok := strings.CutPrefix(errs.String(), "error: ")
	if !ok || strings.Count(line, "\n") != 1 || !strings.HasSuffix(line, "\n") {
		t.Fatalf("stderr is not one error line: %q", errs.String())
	}
	return out.String(), strings.TrimSuffix(line, "\n")
}

func TestAddressFromEnvironment(t *testing.T) {
	addr := startNode(t)
	env := func(k string) string {
		if k == "SHOAL_ADDR" {
			return addr
		}
		return ""
	}
	out, e := runEnv(t, env, "status", "-o", "json")
	if e != "" || !strings.Contains(out, `"leader_id": "n1"`) {
		t.Fatalf("status via SHOAL_ADDR: out %q, err %q", out, e)
	}
	// The address the error names is the one SHOAL_ADDR gave.
	if _, e := runEnv(t, func(string) string { return "127.0.0.1:1" }, "status", "--timeout", "2s"); !strings.Contains(e, "127.0.0.1:1") {
		t.Fatalf("status with SHOAL_ADDR=127.0.0.1:1: err %q, want it to name that address", e)
	}
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
		{"file with sustain flag", []string{"policy", "set", "web", "--file", "p.json", "--sustain", "0.1"}, "file: give the whole policy in the file"},
		{"sustain above 2", []string{"policy", "set", "web", "--metric", "cpu", "--target", "50", "--sustain", "3"}, "policy.sustain: must be a share of the launch delay in [0, 2] (got 3)"},
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
	if out := mustRun("policy", "get", "web") + mustRun("fleet", "get", "web"); strings.Contains(out, "sustain") {
		t.Fatalf("sustain 0 shown in the tables:\n%s", out)
	}
	// The file form carries sustain both ways.
	pol.Sustain = 0.02
	b, err := json.Marshal(pol)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pfile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out := mustRun("policy", "set", "web", "--file", pfile); !strings.Contains(out, "sustain 0.02 (of the launch delay)") {
		t.Fatalf("policy set table lacks sustain:\n%s", out)
	}
	var got view.Policy
	if err := json.Unmarshal([]byte(mustRun("policy", "get", "web", "-o", "json")), &got); err != nil || got.Sustain != 0.02 {
		t.Fatalf("policy get -o json: sustain %v, %v; want 0.02", got.Sustain, err)
	}
	var fj view.Fleet
	if err := json.Unmarshal([]byte(mustRun("fleet", "get", "web", "-o", "json")), &fj); err != nil || fj.Policy == nil || fj.Policy.Sustain != 0.02 {
		t.Fatalf("fleet get -o json: policy %+v, %v; want sustain 0.02", fj.Policy, err)
	}
	if out := mustRun("fleet", "get", "web"); !strings.Contains(out, "sustain 0.02") {
		t.Fatalf("fleet get table lacks sustain:\n%s", out)
	}
	mustRun("policy", "set", "web", "--metric", "cpu", "--target", "50", "--sustain", "0.25")
	if err := json.Unmarshal([]byte(mustRun("policy", "get", "web", "-o", "json")), &got); err != nil || got.Sustain != 0.25 {
		t.Fatalf("policy set --sustain 0.25, then get: sustain %v, %v", got.Sustain, err)
	}
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
		{"no TLS and not insecure", serveArgs(), "ca-cert, cert and key: required"},
		{"wildcard agent addr without advertise", serveArgs("--insecure", "--agent-addr", "0.0.0.0:7403"), "advertise-agent"},
		{"insecure with TLS files", serveArgs("--insecure", "--ca-cert", "ca.pem"), "insecure: cannot be combined with --ca-cert"},
		{"cert without key", serveArgs("--ca-cert", "ca.pem", "--cert", "s.pem"), "cert and key: both required"},
		{"key without ca", serveArgs("--cert", "s.pem", "--key", "s-key.pem"), "ca-cert: required with --cert and --key"},
		{"enrollment without the CA key", serveArgs("--ca-cert", "ca.pem", "--cert", "s.pem", "--key", "k.pem", "--iid-trust", "us-east-1.pem"), "ca-key: required with --iid-trust"},
		{"enrollment with cloud none", serveArgs("--ca-cert", "ca.pem", "--cert", "s.pem", "--key", "k.pem", "--iid-trust", "us-east-1.pem", "--ca-key", "ca-key.pem", "--cloud", "none"), "iid-trust: agent enrollment checks instances with AWS"},
		{"enrollment when insecure", serveArgs("--insecure", "--iid-trust", "us-east-1.pem"), "insecure: agent enrollment (--iid-trust) needs TLS"},
		{"agent cert ttl too long", serveArgs("--ca-cert", "ca.pem", "--cert", "s.pem", "--key", "k.pem", "--iid-trust", "us-east-1.pem", "--ca-key", "ca-key.pem", "--agent-cert-ttl", "48h"), "agent-cert-ttl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, e := run(t, "127.0.0.1:1", tc.args...)
			if !strings.Contains(e, tc.want) {
				t.Fatalf("error %q, want it to contain %q", e, tc.want)
			}
		})
	}
}

// serveArgs is a serve command line that is valid but for security,
// plus extra.
func serveArgs(extra ...string) []string {
	return append([]string{"serve", "--node-id", "n", "--data-dir", "d", "--raft-addr", "127.0.0.1:7300", "--rpc-addr", "127.0.0.1:7400", "--http-addr", "127.0.0.1:3"}, extra...)
}

func TestServeFlagsBindToNodeConfig(t *testing.T) {
	f := serveFlags{cfg: node.DefaultConfig()}
	cmd := &cobra.Command{}
	f.register(cmd)
	if err := cmd.ParseFlags([]string{
		"--node-id", "n1", "--data-dir", t.TempDir(), "--raft-addr", "127.0.0.1:7300", "--rpc-addr", "127.0.0.1:7400",
		"--http-addr", "127.0.0.1:7500", "--join", "127.0.0.1:7401, 127.0.0.1:7402,", "--drain-timeout", "45s",
		"--cluster-name", "blue", "--agent-stale-after", "7s", "--cloud", "none", "--insecure", "--agent-addr", "127.0.0.1:7403",
	}); err != nil {
		t.Fatal(err)
	}
	cfg, err := f.config(io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	def := node.DefaultConfig()
	switch {
	case cfg.Scaler.DrainTimeout != 45*time.Second || cfg.Publish.Cluster != "blue" || cfg.Ingest.StaleAfter != 7*time.Second || cfg.Cloud != node.CloudNone:
		t.Fatalf("flags did not land in the config: %+v", cfg)
	case cfg.Scaler.EvalInterval != def.Scaler.EvalInterval || cfg.Scaler.AgentGrace != def.Scaler.AgentGrace || cfg.Publish.Interval != def.Publish.Interval || cfg.Cluster.ElectionTimeout != def.Cluster.ElectionTimeout:
		t.Fatal("a flag left alone does not keep node.DefaultConfig's value")
	case !cfg.Security.Insecure || cfg.AgentAddr != "127.0.0.1:7403":
		t.Fatalf("insecure = %v, agent addr = %q", cfg.Security.Insecure, cfg.AgentAddr)
	case cfg.Cluster.RaftAdvertise != "127.0.0.1:7300" || cfg.Cluster.RPCAdvertise != "127.0.0.1:7400":
		t.Fatalf("advertised addresses = %s, %s; want the bound ones", cfg.Cluster.RaftAdvertise, cfg.Cluster.RPCAdvertise)
	case len(cfg.Cluster.Join) != 2 || cfg.Cluster.Join[1] != "127.0.0.1:7402":
		t.Fatalf("join = %q", cfg.Cluster.Join)
	}
	if f.cfg.Cluster.RaftAdvertise != "" {
		t.Fatal("config changed the flags it resolved")
	}
}
