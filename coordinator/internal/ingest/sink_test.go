package ingest

import (
	"context"
	"net"
	"os"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/proto/rpc"
)

// TestBenchSink is not a check: it serves a one-node ingest (leader, the
// in-memory registry with fleet "web") on $SHOAL_BENCH_SINK_ADDR for
// $SHOAL_BENCH_SINK_FOR, so deploy/bench/agent.sh can measure a real agent
// streaming into the real ingest code. It is skipped unless asked for.
func TestBenchSink(t *testing.T) {
	addr := os.Getenv("SHOAL_BENCH_SINK_ADDR")
	if addr == "" {
		t.Skip("SHOAL_BENCH_SINK_ADDR not set: this is deploy/bench/agent.sh's coordinator")
	}
	d, err := time.ParseDuration(os.Getenv("SHOAL_BENCH_SINK_FOR"))
	if err != nil || d <= 0 || d > 10*time.Minute {
		t.Fatalf("SHOAL_BENCH_SINK_FOR %q: want a duration up to 10m", os.Getenv("SHOAL_BENCH_SINK_FOR"))
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(testConfig(), &fakeCluster{id: "bench", leader: true, leaderAddr: addr}, newRegistry())
	if err != nil {
		t.Fatal(err)
	}
	srv := rpc.NewServer()
	svc.Register(srv)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	go func() { _ = svc.Run(ctx) }()
	go func() { <-ctx.Done(); srv.Stop() }()
	_ = srv.Serve(lis)
	agg := svc.Aggregates("web", time.Minute)
	if agg["cpu"].Count == 0 {
		t.Fatalf("no agent reported cpu in the last minute: %v", agg)
	}
	t.Logf("cpu over the last minute: %+v (samples from %d instances)", agg["cpu"], agg["cpu"].Count)
}
