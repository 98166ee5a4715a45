package cluster

import (
	"context"
	"testing"
)

// TestBenchStores runs the benchmark harness briefly on both durable stores
// over real TCP: it is the unit-level check that each store opens, commits
// through a 3-node quorum and closes.
func TestBenchStores(t *testing.T) {
	for _, store := range []string{StoreWAL, StoreBolt} {
		t.Run(store, func(t *testing.T) {
			phases, err := Bench(context.Background(), BenchConfig{Store: store, Dir: t.TempDir(), Ops: 40, Concurrency: 4})
			if err != nil {
				t.Fatal(err)
			}
			if len(phases) != 2 {
				t.Fatalf("phases = %d, want 2", len(phases))
			}
			for _, p := range phases {
				if p.Ops != 40 || p.P50 <= 0 || p.P99 < p.P50 || p.OpsPerSec() <= 0 {
					t.Fatalf("phase %+v", p)
				}
			}
		})
	}
}
