package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	clusterv1 "github.com/shoal-dev/shoal/proto/gen/shoal/cluster/v1"
)

// BenchConfig configures Bench.
type BenchConfig struct {
	Store string
	// Dir holds the three nodes' data directories; it must be empty or
	// missing.
	Dir string
	// Ops is the number of commands per phase; Concurrency the writers of
	// the concurrent phase.
	Ops         int
	Concurrency int
	Logger      *slog.Logger
}

// BenchPhase is one measured phase.
type BenchPhase struct {
	Name        string
	Ops         int
	Concurrency int
	Elapsed     time.Duration
	P50, P99    time.Duration
}

// OpsPerSec is the phase's apply throughput.
func (p BenchPhase) OpsPerSec() float64 { return float64(p.Ops) / p.Elapsed.Seconds() }

// Bench runs a 3-node cluster over loopback TCP with the given log store in
// one process and measures leader Apply: commit latency one write at a time,
// then throughput and latency with Concurrency writers. The commands are
// real FSM commands (watermark sets), so FSM apply time is included.
func Bench(ctx context.Context, cfg BenchConfig) ([]BenchPhase, error) {
	if cfg.Ops <= 0 || cfg.Concurrency <= 0 {
		return nil, fmt.Errorf("ops (%d) and concurrency (%d) must be > 0", cfg.Ops, cfg.Concurrency)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var nodes []*Node
	defer func() {
		for _, n := range nodes {
			_ = n.Shutdown()
		}
	}()
	for i := 0; i < 3; i++ {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		c := DefaultConfig()
		c.NodeID = fmt.Sprintf("bench%d", i)
		c.DataDir = filepath.Join(cfg.Dir, c.NodeID)
		c.RaftBind, c.RaftAdvertise, c.RPCAdvertise = addr, addr, "127.0.0.1:1" // no RPC: all writes go to the leader
		c.LogStore = cfg.Store
		c.Bootstrap = i == 0
		c.Logger = cfg.Logger
		if entries, _ := os.ReadDir(c.DataDir); len(entries) > 0 {
			return nil, fmt.Errorf("dir (%s): not empty", c.DataDir)
		}
		n, err := New(c, fsm.New())
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	leader := nodes[0]
	if err := pollUntil(ctx, 10*time.Second, leader.IsLeader); err != nil {
		return nil, fmt.Errorf("bench leader: %w", err)
	}
	for _, n := range nodes[1:] {
		if _, err := leader.Join(ctx, &clusterv1.JoinClusterRequest{NodeId: n.NodeID(), RaftAddr: n.cfg.RaftBind, RpcAddr: n.RPCAddr()}); err != nil {
			return nil, err
		}
	}
	// Warm up: the followers catch up and the connection pool fills.
	if _, err := runPhase(ctx, leader, "warmup", 200, 4); err != nil {
		return nil, err
	}
	var out []BenchPhase
	for _, conc := range []int{1, cfg.Concurrency} {
		p, err := runPhase(ctx, leader, fmt.Sprintf("c%d", conc), cfg.Ops, conc)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func runPhase(ctx context.Context, leader *Node, name string, ops, conc int) (BenchPhase, error) {
	lat := make([]time.Duration, ops)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		firstEr error
		next    = make(chan int, ops)
	)
	for i := 0; i < ops; i++ {
		next <- i
	}
	close(next)
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				cmd := fsm.SetWatermark("bench/"+strconv.Itoa(i%64), int64(i)).Encode()
				t0 := time.Now()
				r, _, err := leader.Apply(ctx, cmd)
				if err == nil {
					err = r.Error()
				}
				lat[i] = time.Since(t0)
				if err != nil {
					mu.Lock()
					firstEr = errors.Join(firstEr, err)
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstEr != nil {
		return BenchPhase{}, firstEr
	}
	elapsed := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return BenchPhase{
		Name: name, Ops: ops, Concurrency: conc, Elapsed: elapsed,
		P50: lat[ops/2], P99: lat[min(ops-1, ops*99/100)],
	}, nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func pollUntil(ctx context.Context, d time.Duration, cond func() bool) error {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}
