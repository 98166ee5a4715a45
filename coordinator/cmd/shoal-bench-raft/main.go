// Command shoal-bench-raft measures raft apply throughput and commit latency
// on a 3-node loopback cluster, for each log store. deploy/bench/raft.sh
// builds and drives it for `make bench`; it is not part of the product, so
// `make build` does not build it. It lives under coordinator/ because the
// benchmark runs coordinator/internal/cluster, which Go's internal rule keeps
// out of reach of deploy/.
//
//	shoal-bench-raft -store wal|boltdb [-ops N] [-concurrency N] [-dir DIR] [-no-header] [-o table|json]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/shoal-dev/shoal/coordinator/internal/cluster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "error: "+err.Error())
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("shoal-bench-raft", flag.ContinueOnError)
	fs.SetOutput(stderr)
	store := fs.String("store", cluster.StoreWAL, "log store: wal or boltdb")
	ops := fs.Int("ops", 2000, "commands per phase")
	conc := fs.Int("concurrency", 32, "writers in the concurrent phase")
	dir := fs.String("dir", "", "empty directory for the data (default: a temporary one)")
	noHeader := fs.Bool("no-header", false, "omit the table header")
	output := fs.String("o", "table", "output format: table or json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case fs.NArg() > 0:
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case *store != cluster.StoreWAL && *store != cluster.StoreBolt:
		return fmt.Errorf("store (%q): must be %q or %q", *store, cluster.StoreWAL, cluster.StoreBolt)
	case *output != "table" && *output != "json":
		return fmt.Errorf("o (%q): must be table or json", *output)
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "shoal-bench-raft-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	} else if entries, _ := os.ReadDir(*dir); len(entries) > 0 {
		return errors.New("dir: must be empty")
	}
	phases, err := cluster.Bench(ctx, cluster.BenchConfig{Store: *store, Dir: *dir, Ops: *ops, Concurrency: *conc})
	if err != nil {
		return err
	}
	if *output == "json" {
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
			out = append(out, row{*store, p.Concurrency, p.Ops, p.OpsPerSec(), ms(p.P50), ms(p.P99)})
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	if !*noHeader {
		fmt.Fprintf(stdout, "%-8s %11s %7s %10s %9s %9s\n", "STORE", "CONCURRENCY", "OPS", "OPS/S", "P50_MS", "P99_MS")
	}
	for _, p := range phases {
		fmt.Fprintf(stdout, "%-8s %11d %7d %10.0f %9.2f %9.2f\n", *store, p.Concurrency, p.Ops, p.OpsPerSec(), ms(p.P50), ms(p.P99))
	}
	return nil
}

func ms(d time.Duration) float64 { return d.Seconds() * 1000 }
