package cluster

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	raftwal "github.com/hashicorp/raft-wal"
	walfs "github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/metadb"

	"github.com/shoal-dev/shoal/coordinator/internal/nemesis"
)

const wipeHint = "wipe this node's data dir and let it rejoin (see Durability in ARCHITECTURE.md)"

func (n *Node) open() error {
	cfg := n.cfg
	hl := NewHCLog(n.log, hclog.Info)
	logs, stable, snaps := cfg.LogStoreImpl, cfg.StableStore, cfg.SnapshotStore
	if snaps == nil {
		s, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 2, hl.Named("snapshot"))
		if err != nil {
			return fmt.Errorf("open snapshot store: %w", err)
		}
		cs := &checkedSnapshotStore{SnapshotStore: s, dir: cfg.DataDir, onFatal: n.failStorage}
		snaps = cs
		if err := verifySnapshots(cs); err != nil {
			return fmt.Errorf("raft snapshot: %w; %s", err, wipeHint)
		}
	}
	// Raft keeps no log below a snapshot it installed or took, except the
	// trailing entries compaction left: the log may have a gap up to the
	// newest snapshot's index, and only above it must it be whole.
	var snapIndex uint64
	if list, err := snaps.List(); err == nil && len(list) > 0 {
		snapIndex = list[0].Index
	}
	if logs == nil {
		cs, st, err := n.openLogStore(hl)
		if err != nil {
			return err
		}
		if err := verifyLog(cs, snapIndex); err != nil {
			return fmt.Errorf("raft log: %w; %s", err, wipeHint)
		}
		li, acked, err := openLastIndex(cfg.DataDir)
		if err != nil {
			return fmt.Errorf("data-dir: %w", err)
		}
		n.close = append(n.close, li)
		if err := checkLastIndex(cs, acked, cs.where); err != nil {
			return fmt.Errorf("raft log: %w; %s", err, wipeHint)
		}
		end, err := cs.LastIndex()
		if err != nil {
			return fmt.Errorf("raft log: %w", err)
		}
		cs.acked.Store(end)
		cs.last = li
		logs, stable = cs, st
	}
	trans := cfg.Transport
	if trans == nil && cfg.StreamLayer != nil {
		t := raft.NewNetworkTransportWithLogger(nemesis.StreamLayer(cfg.StreamLayer), 3, 10*time.Second, hl.Named("transport"))
		trans = t
		n.close = append(n.close, t)
	}
	if trans == nil {
		adv, err := net.ResolveTCPAddr("tcp", cfg.RaftAdvertise)
		if err != nil {
			return fmt.Errorf("advertise-raft (%q): %w", cfg.RaftAdvertise, err)
		}
		t, err := tcpTransport(cfg.RaftBind, adv, hl)
		if err != nil {
			return fmt.Errorf("raft-addr (%q): %w", cfg.RaftBind, err)
		}
		trans = t
		n.close = append(n.close, t)
	}
	n.trans = trans

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	rc.Logger = hl.Named("raft")
	notify := make(chan bool, 8)
	rc.NotifyCh = notify
	if err := raft.ValidateConfig(rc); err != nil {
		return fmt.Errorf("raft config: %w", err)
	}

	existing, err := raft.HasExistingState(logs, stable, snaps)
	if err != nil {
		return fmt.Errorf("read raft state: %w", err)
	}
	r, err := raft.NewRaft(rc, n.fsm, logs, stable, snaps, trans)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	n.raft = r

	obsCh := make(chan raft.Observation, 32)
	n.observer = raft.NewObserver(obsCh, false, func(o *raft.Observation) bool {
		switch o.Data.(type) {
		case raft.FailedHeartbeatObservation, raft.ResumedHeartbeatObservation, raft.LeaderObservation:
			return true
		}
		return false
	})
	r.RegisterObserver(n.observer)
	n.wg.Add(2)
	go n.watchLeadership(notify)
	go n.watchObservations(obsCh)

	switch {
	case existing:
		n.log.Info("found existing raft state; rejoining", "data_dir", cfg.DataDir)
	case cfg.Bootstrap:
		n.log.Info("bootstrapping a new cluster")
		err := r.BootstrapCluster(raft.Configuration{Servers: []raft.Server{{
			ID: rc.LocalID, Address: trans.LocalAddr(), Suffrage: raft.Voter,
		}}}).Error()
		if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return fmt.Errorf("bootstrap: %w", err)
		}
	}
	// A fresh node under --bootstrap-expect finds its peers first; with
	// state it is a member already and only rejoins.
	if !existing && cfg.BootstrapExpect > 0 {
		n.wg.Add(1)
		go n.expectLoop()
		return nil
	}
	// A node started with --join asks again after a restart too: the leader
	// treats a known member as a no-op and refreshes its addresses.
	if len(cfg.Join) > 0 {
		n.wg.Add(1)
		go n.joinLoop()
	}
	return nil
}

// tcpTransport is raft over plain TCP (--insecure). With the nemesis dial
// map armed it is built on a stream layer that can route dials through the
// harness's proxies; raft's own TCP transport keeps its layer to itself.
func tcpTransport(bind string, adv *net.TCPAddr, hl hclog.Logger) (*raft.NetworkTransport, error) {
	if !nemesis.DialMapped() {
		return raft.NewTCPTransportWithLogger(bind, adv, 3, 10*time.Second, hl.Named("transport"))
	}
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	return raft.NewNetworkTransportWithLogger(nemesis.StreamLayer(nemesis.TCPStreamLayer(ln, adv)), 3, 10*time.Second, hl.Named("transport")), nil
}

// openLogStore opens the durable log store behind the checksum envelope.
func (n *Node) openLogStore(hl hclog.Logger) (*checkedLogStore, raft.StableStore, error) {
	cfg := n.cfg
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("data-dir: %w", err)
	}
	switch cfg.LogStore {
	case StoreBolt:
		path := filepath.Join(cfg.DataDir, "raft.db")
		s, err := raftboltdb.New(raftboltdb.Options{Path: path})
		if err != nil {
			return nil, nil, fmt.Errorf("open boltdb log store: %w", err)
		}
		n.close = append(n.close, s)
		where := func(uint64) string { return "file " + path }
		return n.checked(s, where), s, nil
	default:
		dir := filepath.Join(cfg.DataDir, "wal")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, nil, fmt.Errorf("data-dir: %w", err)
		}
		vfs := cfg.walVFS
		if vfs == nil {
			vfs = nemesis.DiskVFS(walfs.New())
		}
		filer := newSegmentFiler(dir, vfs)
		// raft-wal's Close leaves its metadata DB open, and with it the
		// file lock that a reopen in the same process would wait on forever.
		meta := &metadb.BoltMetaDB{}
		n.close = append(n.close, meta)
		// A zero segment size is raft-wal's default (64 MiB).
		s, err := raftwal.Open(dir, raftwal.WithLogger(hl.Named("wal")), raftwal.WithSegmentFiler(filer),
			raftwal.WithSegmentSize(cfg.walSegmentSize), raftwal.WithMetaStore(meta))
		if err != nil {
			err = fmt.Errorf("open raft-wal log store: %w", err)
			if errors.Is(err, ErrCorrupt) {
				err = fmt.Errorf("%w; %s", err, wipeHint)
			}
			return nil, nil, err
		}
		n.close = append(n.close, s)
		return n.checked(s, filer.where), s, nil
	}
}

func (n *Node) checked(s raft.LogStore, where func(uint64) string) *checkedLogStore {
	return &checkedLogStore{LogStore: s, where: where, onFatal: n.failStorage}
}
