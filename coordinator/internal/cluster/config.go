package cluster

import (
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"github.com/hashicorp/raft-wal/types"
	"google.golang.org/grpc"
)

// Log stores.
const (
	// StoreWAL is hashicorp/raft-wal. It is the default: on the 3-node
	// loopback benchmark (deploy/bench/raft.sh) it commits with lower
	// latency and higher throughput than BoltDB, because it appends to
	// segment files instead of rewriting B+tree pages and fsyncing a
	// freelist on every batch, and it never needs compaction after
	// truncation.
	StoreWAL = "wal"
	// StoreBolt is hashicorp/raft-boltdb/v2, kept selectable for the
	// benchmark and for operators who already run it elsewhere.
	StoreBolt = "boltdb"
)

// Config configures one node. Start from DefaultConfig; Validate says which
// field is wrong.
type Config struct {
	NodeID  string
	DataDir string
	// RaftBind is where the raft transport listens; RaftAdvertise is what
	// peers dial (serve sets it to RaftBind unless --advertise-raft).
	RaftBind      string
	RaftAdvertise string
	// RPCAdvertise is the gRPC address peers and clients use for this node.
	RPCAdvertise string

	Bootstrap bool
	// BootstrapExpect, when > 0, forms a cluster once: a node with no raft
	// state asks every Join address (retrying, like Consul's retry_join)
	// and bootstraps only when BootstrapExpect servers in all, itself
	// among them, are fresh and none is in a cluster; every one of them
	// bootstraps the same configuration. A node with state, or one that
	// finds a server in a cluster, joins and never bootstraps.
	BootstrapExpect int
	Join            []string

	LogStore string

	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	// ApplyTimeout bounds one raft.Apply on the leader.
	ApplyTimeout time.Duration
	// NoLeaderWait is how long a write or leader read waits for a leader
	// before failing with "no leader".
	NoLeaderWait time.Duration
	// ShutdownTimeout bounds leadership transfer plus raft shutdown.
	ShutdownTimeout   time.Duration
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
	// TrailingLogs is how many entries stay in the log after a snapshot; a
	// follower further behind than that is sent the snapshot instead.
	TrailingLogs uint64

	Logger *slog.Logger
	// Clock stamps commands on the leader; tests may fix it.
	Clock func() time.Time
	// AgentAdvertise is the node's agent-only listener as agents dial it
	// (serve's --agent-addr); empty when agents use the RPC address. It is
	// recorded with the node's other addresses, so agents can be pointed at
	// the leader's.
	AgentAdvertise string
	// Dial opens a gRPC connection to a peer's RPC address; defaults to
	// rpc.Dial. Tests pass a bufconn dialer.
	Dial func(addr string) (*grpc.ClientConn, error)

	// StreamLayer, when set and Transport is not, carries raft's traffic
	// (serve's TLS layer); the node closes it on shutdown. RaftBind is then
	// what the layer listens on.
	StreamLayer raft.StreamLayer
	// Transport, LogStoreImpl, StableStore and SnapshotStore replace the
	// durable defaults; the in-memory cluster test sets all four.
	Transport     raft.Transport
	LogStoreImpl  raft.LogStore
	StableStore   raft.StableStore
	SnapshotStore raft.SnapshotStore

	// walVFS and walSegmentSize let this package's tests put raft-wal on a
	// file system that fails on demand and seal segments after a few
	// entries; nil and 0 mean the real file system and raft-wal's default.
	walVFS         types.VFS
	walSegmentSize int
}

// DefaultConfig returns production timings; tests shorten them by flag.
// Identity, addresses and the data dir are the caller's.
func DefaultConfig() Config {
	return Config{
		Logger:             slog.Default(),
		Clock:              time.Now,
		LogStore:           StoreWAL,
		HeartbeatTimeout:   1000 * time.Millisecond,
		ElectionTimeout:    1000 * time.Millisecond,
		LeaderLeaseTimeout: 500 * time.Millisecond,
		CommitTimeout:      50 * time.Millisecond,
		ApplyTimeout:       10 * time.Second,
		NoLeaderWait:       5 * time.Second,
		ShutdownTimeout:    10 * time.Second,
		SnapshotThreshold:  8192,
		SnapshotInterval:   2 * time.Minute,
		TrailingLogs:       10240,
	}
}

// Validate says which field is wrong and why.
func (c Config) Validate() error {
	switch {
	case c.NodeID == "":
		return fmt.Errorf("node-id: required")
	case c.Transport == nil && c.RaftBind == "":
		return fmt.Errorf("raft-addr: required")
	case c.RPCAdvertise == "":
		return fmt.Errorf("advertise-rpc: required")
	case c.Bootstrap && len(c.Join) > 0:
		return fmt.Errorf("bootstrap and join: give one, not both")
	case c.Bootstrap && c.BootstrapExpect > 0:
		return fmt.Errorf("bootstrap and bootstrap-expect: give one, not both (--bootstrap-expect forms the cluster once, and is safe to leave in place)")
	case c.BootstrapExpect < 0 || c.BootstrapExpect > MaxBootstrapExpect:
		return fmt.Errorf("bootstrap-expect (%d): must be between 1 and %d", c.BootstrapExpect, MaxBootstrapExpect)
	case c.BootstrapExpect > 1 && len(c.Join) < c.BootstrapExpect-1:
		return fmt.Errorf("join: bootstrap-expect %d needs the addresses of at least %d other servers (got %d)", c.BootstrapExpect, c.BootstrapExpect-1, len(c.Join))
	case c.LogStoreImpl == nil && c.LogStore != StoreWAL && c.LogStore != StoreBolt:
		return fmt.Errorf("log-store (%q): must be %q or %q", c.LogStore, StoreWAL, StoreBolt)
	case c.LogStoreImpl == nil && c.DataDir == "":
		return fmt.Errorf("data-dir: required")
	case c.LeaderLeaseTimeout > c.HeartbeatTimeout:
		return fmt.Errorf("raft-leader-lease-timeout (%s) must be <= raft-heartbeat-timeout (%s)", c.LeaderLeaseTimeout, c.HeartbeatTimeout)
	case c.ElectionTimeout < c.HeartbeatTimeout:
		return fmt.Errorf("raft-election-timeout (%s) must be >= raft-heartbeat-timeout (%s)", c.ElectionTimeout, c.HeartbeatTimeout)
	case c.Logger == nil:
		return fmt.Errorf("logger: required")
	case c.Clock == nil:
		return fmt.Errorf("clock: required")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"raft-heartbeat-timeout", c.HeartbeatTimeout}, {"raft-election-timeout", c.ElectionTimeout},
		{"raft-leader-lease-timeout", c.LeaderLeaseTimeout}, {"raft-commit-timeout", c.CommitTimeout},
		{"apply timeout", c.ApplyTimeout}, {"no-leader-wait", c.NoLeaderWait}, {"shutdown-timeout", c.ShutdownTimeout},
		{"raft-snapshot-interval", c.SnapshotInterval}} {
		if d.v <= 0 {
			return fmt.Errorf("%s (%s) must be > 0", d.name, d.v)
		}
	}
	switch {
	case c.SnapshotThreshold == 0:
		return fmt.Errorf("raft-snapshot-threshold: must be > 0")
	case c.TrailingLogs == 0:
		return fmt.Errorf("raft-trailing-logs: must be > 0")
	}
	if c.Transport == nil {
		if err := mustBeDialable("advertise-raft", c.RaftAdvertise); err != nil {
			return err
		}
	}
	if c.AgentAdvertise != "" {
		if err := mustBeDialable("advertise-agent", c.AgentAdvertise); err != nil {
			return err
		}
	}
	if err := mustBeDialable("advertise-rpc", c.RPCAdvertise); err != nil {
		return err
	}
	for i, j := range c.Join {
		if _, _, err := net.SplitHostPort(j); err != nil {
			return fmt.Errorf("join[%d] (%q): want HOST:PORT: %v", i, j, err)
		}
	}
	return nil
}

// mustBeDialable rejects unspecified hosts, which peers cannot dial.
func mustBeDialable(field, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s (%q): want HOST:PORT: %v", field, addr, err)
	}
	if port == "0" || port == "" {
		return fmt.Errorf("%s (%q): needs a fixed port", field, addr)
	}
	if ip := net.ParseIP(strings.Trim(host, "[]")); host == "" || (ip != nil && ip.IsUnspecified()) {
		return fmt.Errorf("%s (%q): is required when binding an unspecified address; give an address peers can dial", field, addr)
	}
	return nil
}
