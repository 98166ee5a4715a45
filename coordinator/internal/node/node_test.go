package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// freeAddr is a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func testConfig(t *testing.T) Config {
	c := DefaultConfig()
	c.Cloud = CloudNone
	c.Cluster.NodeID = "n1"
	c.Cluster.DataDir = filepath.Join(t.TempDir(), "data")
	c.Cluster.RaftBind = freeAddr(t)
	c.Cluster.RaftAdvertise = c.Cluster.RaftBind
	c.Cluster.Bootstrap = true
	c.RPCAddr, c.HTTPAddr = freeAddr(t), freeAddr(t)
	c.Cluster.RPCAdvertise = c.RPCAddr
	c.Logger = quiet()
	c.Security.Insecure = true
	return c
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"ok", func(*Config) {}, ""},
		{"no node id", func(c *Config) { c.Cluster.NodeID = "" }, "node-id: required"},
		{"no data dir", func(c *Config) { c.Cluster.DataDir = "" }, "data-dir: required"},
		{"no raft addr", func(c *Config) { c.Cluster.RaftBind = "" }, "raft-addr: required"},
		{"no rpc addr", func(c *Config) { c.RPCAddr = "" }, "rpc-addr: required"},
		{"no http addr", func(c *Config) { c.HTTPAddr = "" }, "http-addr: required"},
		{"unknown cloud", func(c *Config) { c.Cloud = "gcp" }, `cloud ("gcp"): want aws or none`},
		{"short publish interval", func(c *Config) { c.Publish.Interval = 500 * time.Millisecond }, "publish-interval (500ms) must be >= 1s"},
		{"no cluster name", func(c *Config) { c.Publish.Cluster = "" }, "cluster-name: required"},
		{"negative custom metrics", func(c *Config) { c.Publish.MaxCustomMetrics = -1 }, "max-custom-metrics (-1) must be >= 0"},
		{"no alarm interval", func(c *Config) { c.AlarmEvery = 0 }, "alarm-reconcile-interval (0s) must be > 0"},
		{"no stale after", func(c *Config) { c.Ingest.StaleAfter = 0 }, "agent-stale-after (0s) must be > 0"},
		{"no eval interval", func(c *Config) { c.Scaler.EvalInterval = 0 }, "eval-interval (0s) must be > 0"},
		{"negative drain timeout", func(c *Config) { c.Scaler.DrainTimeout = -time.Second }, "drain-timeout (-1s) must be > 0"},
		{"wildcard advertise", func(c *Config) { c.Cluster.RPCAdvertise = "0.0.0.0:7400" }, "advertise-rpc"},
		{"bad log store", func(c *Config) { c.Cluster.LogStore = "sqlite" }, `log-store ("sqlite")`},
		{"no feed lease", func(c *Config) { c.Feed.LeaseTTL = 0 }, "lease ttl"},
		{"no grpc stop timeout", func(c *Config) { c.GRPCStopTimeout = 0 }, "grpc stop timeout"},
		{"no logger", func(c *Config) { c.Logger = nil }, "logger: required"},
		{"aws settings checked with cloud aws", func(c *Config) { c.Cloud, c.AWS.MaxAttempts = CloudAWS, 0 }, "aws: max attempts (0)"},
		{"aws settings ignored with cloud none", func(c *Config) { c.AWS.MaxAttempts = 0 }, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testConfig(t)
			tc.mod(&c)
			before := c
			err := c.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate() = %v, want it to contain %q", err, tc.want)
			}
			if fmt.Sprintf("%+v", c) != fmt.Sprintf("%+v", before) {
				t.Fatal("Validate changed the config")
			}
			if _, err := os.Stat(c.Cluster.DataDir); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("Validate touched the data dir: %v", err)
			}
		})
	}
}

func TestPortClashFailsBeforeRaft(t *testing.T) {
	for _, which := range []string{"rpc-addr", "http-addr"} {
		t.Run(which, func(t *testing.T) {
			busy, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer busy.Close()
			c := testConfig(t)
			if which == "rpc-addr" {
				c.RPCAddr = busy.Addr().String()
				c.Cluster.RPCAdvertise = c.RPCAddr
			} else {
				c.HTTPAddr = busy.Addr().String()
			}
			n, err := New(t.Context(), c)
			if err == nil {
				t.Fatalf("New with %s taken succeeded (%v)", which, n)
			}
			if !strings.Contains(err.Error(), which+` ("`+busy.Addr().String()+`")`) {
				t.Fatalf("err = %v, want it to name %s and the address", err, which)
			}
			if _, err := os.Stat(c.Cluster.DataDir); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("the data dir exists after a port clash (%v): raft ran before listening", err)
			}
			if which == "http-addr" {
				// The RPC port New had taken is free again.
				l, err := net.Listen("tcp", c.RPCAddr)
				if err != nil {
					t.Fatalf("rpc-addr still held after the failed New: %v", err)
				}
				l.Close()
			}
		})
	}
}

func TestRunServesAndStops(t *testing.T) {
	c := testConfig(t)
	n, err := New(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := http.Get("http://" + c.HTTPAddr + "/healthz")
		if err == nil {
			b, _ := io.ReadAll(r.Body)
			r.Body.Close()
			if r.StatusCode == http.StatusOK && strings.Contains(string(b), "leader=n1") {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no healthy leader within 20s (last: %v)", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil after its context ends", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of its context ending")
	}
	// Stopped means the ports are released.
	for _, a := range []string{c.RPCAddr, c.HTTPAddr} {
		l, err := net.Listen("tcp", a)
		if err != nil {
			t.Fatalf("%s still held after Run returned: %v", a, err)
		}
		l.Close()
	}
}

// A --snapshot-dir the node cannot create fails the start, naming the
// flag, rather than leave a node running without the backups it was told
// to write; the address it listened on is free again.
func TestUnusableSnapshotDirFailsTheStart(t *testing.T) {
	c := testConfig(t)
	file := filepath.Join(t.TempDir(), "a-file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c.Snapshots.Dir = filepath.Join(file, "snapshots")
	n, err := New(t.Context(), c)
	if err == nil {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_ = n.Run(ctx) // stops at once, releasing what New took
		t.Fatal("New with a snapshot dir under a regular file succeeded")
	}
	if !strings.Contains(err.Error(), "snapshot-dir") {
		t.Fatalf("err = %v, want it to name snapshot-dir", err)
	}
	l, err := net.Listen("tcp", c.RPCAddr)
	if err != nil {
		t.Fatalf("rpc-addr still held after the failed start: %v", err)
	}
	l.Close()
}
