package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/coordinator/internal/cluster"
)

// benchRaftCmd is hidden: deploy/bench/raft.sh drives it for `make bench`.
func benchRaftCmd() *cobra.Command {
	var (
		store    string
		ops      int
		conc     int
		dir      string
		noHeader bool
	)
	cmd := &cobra.Command{
		Use:    "bench-raft --store wal|boltdb [--ops N] [--concurrency N]",
		Short:  "measure raft apply throughput and commit latency on a 3-node loopback cluster",
		Hidden: true,
		Args:   exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if store != cluster.StoreWAL && store != cluster.StoreBolt {
				return fmt.Errorf("store (%q): must be %q or %q", store, cluster.StoreWAL, cluster.StoreBolt)
			}
			if dir == "" {
				d, err := os.MkdirTemp("", "shoal-bench-raft-")
				if err != nil {
					return err
				}
				defer os.RemoveAll(d)
				dir = d
			} else if entries, _ := os.ReadDir(dir); len(entries) > 0 {
				return errors.New("dir: must be empty")
			}
			phases, err := cluster.Bench(cmd.Context(), cluster.BenchConfig{Store: store, Dir: dir, Ops: ops, Concurrency: conc})
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if g.output == "json" {
				type row struct {
					Store       string  `json:"store"`
					Concurrency int     `json:"concurrency"`
					Ops         int     `json:"ops"`
					OpsPerSec   float64 `json:"ops_per_sec"`
					P50MS       float64 `json:"p50_ms"`
					P99MS       float64 `json:"p99_ms"`
				}
				var out []row
				for _, p := range phases {
					out = append(out, row{store, p.Concurrency, p.Ops, p.OpsPerSec(), ms(p.P50), ms(p.P99)})
				}
				return printJSON(w, out)
			}
			if !noHeader {
				fmt.Fprintf(w, "%-8s %11s %7s %10s %9s %9s\n", "STORE", "CONCURRENCY", "OPS", "OPS/S", "P50_MS", "P99_MS")
			}
			for _, p := range phases {
				fmt.Fprintf(w, "%-8s %11d %7d %10.0f %9.2f %9.2f\n", store, p.Concurrency, p.Ops, p.OpsPerSec(), ms(p.P50), ms(p.P99))
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&store, "store", cluster.StoreWAL, "log store: wal or boltdb")
	fl.IntVar(&ops, "ops", 2000, "commands per phase")
	fl.IntVar(&conc, "concurrency", 32, "writers in the concurrent phase")
	fl.StringVar(&dir, "dir", "", "empty directory for the data (default: a temporary one)")
	fl.BoolVar(&noHeader, "no-header", false, "omit the table header")
	return cmd
}

func ms(d interface{ Seconds() float64 }) float64 { return d.Seconds() * 1000 }
