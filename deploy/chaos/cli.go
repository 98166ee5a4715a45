package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// Main is shoal-chaos's entry point (what `make chaos` runs); it returns
// 0 when every invariant held, 1 when one broke, 2 when the run could not
// happen. SEED, CHAOS_DURATION and CHAOS_NODES override the flags'
// defaults, as make passes them; a flag given on the command line wins.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	cfg := DefaultConfig()
	cfg.Out = stdout
	broke := false
	var recheck string
	cmd := &cobra.Command{
		Use:   "shoal-chaos",
		Short: "run Shoal on loopback under a seeded nemesis and check its invariants (what `make chaos` runs)",
		Long: `shoal-chaos starts the local cloud, the coordinators (failpoints build),
an Auto Scaling group of demoapp+agent instances and shoal-lb, every link
behind a TCP proxy; drives load with spikes and operator commands while
faults drawn from the seed hit it (partitions, kill -9, SIGSTOP of the
leader, local cloud API faults, disk full and corrupt reads, agent and LB
disconnects); then checks the invariants of issue 15 and writes
chaos-report/ (report.json, records.json, timeline.svg).
SEED=n reproduces a run; CHAOS_DURATION (a Go duration) and CHAOS_NODES
(3 or 5) set its length and size.`,
		Args:          cobra.NoArgs,
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if recheck != "" {
				invs, err := Recheck(recheck, cfg.ReportDir)
				if err != nil {
					return err
				}
				for _, inv := range invs {
					fmt.Fprintf(stdout, "%v %s %s\n", inv.OK, inv.Name, strings.Join(inv.Counterexamples, "; "))
				}
				broke = len(Failed(invs)) > 0
				return nil
			}
			if cfg.BinDir == "" {
				exe, err := os.Executable()
				if err != nil {
					return fmt.Errorf("bin dir: %w", err)
				}
				cfg.BinDir = filepath.Dir(exe)
			}
			if err := fromEnv(&cfg, getenv, cmd.Flags().Changed); err != nil {
				return err
			}
			res, err := Run(cmd.Context(), cfg)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "wall time %s; seed %d\n", res.Wall.Round(time.Second), cfg.Seed)
			broke = len(Failed(res.Invariants)) > 0
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.BinDir, "bin", cfg.BinDir, "directory of `make build`'s binaries (default: this program's)")
	f.StringVar(&cfg.ReportDir, "report-dir", cfg.ReportDir, "where report.json, records.json and timeline.svg go")
	f.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of the faults and their timing (env SEED)")
	f.BoolVar(&cfg.Fixed, "fixed", cfg.Fixed, "run the fixed script (each fault kind once, no randomness) instead")
	f.DurationVar(&cfg.Duration, "duration", cfg.Duration, "load time of a seeded run (env CHAOS_DURATION)")
	f.IntVar(&cfg.Nodes, "nodes", cfg.Nodes, "coordinators: 3 or 5 (env CHAOS_NODES)")
	f.BoolVar(&cfg.KeepDir, "keep", cfg.KeepDir, "keep the sandbox directory with every process's log")
	f.StringVar(&recheck, "check", "", "only check a run's records.json again (no system is started) and write the report")
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	if err := cmd.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(stderr, "shoal-chaos:", err)
		return 2
	}
	if broke {
		fmt.Fprintln(stderr, "shoal-chaos: invariants broken; see", filepath.Join(cfg.ReportDir, "report.json"))
		return 1
	}
	return 0
}

// fromEnv applies SEED, CHAOS_DURATION and CHAOS_NODES when set, each
// unless its flag (seed, duration, nodes) was given: changed says which
// were.
func fromEnv(cfg *Config, getenv func(string) string, changed func(flag string) bool) error {
	if v := getenv("SEED"); v != "" && !changed("seed") {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return fmt.Errorf("SEED (%q): must be a non-negative integer", v)
		}
		cfg.Seed = n
	}
	if v := getenv("CHAOS_DURATION"); v != "" && !changed("duration") {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("CHAOS_DURATION (%q): must be a Go duration such as 30m", v)
		}
		cfg.Duration = d
	}
	if v := getenv("CHAOS_NODES"); v != "" && !changed("nodes") {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("CHAOS_NODES (%q): must be 3 or 5", v)
		}
		cfg.Nodes = n
	}
	return cfg.Validate()
}

// maxRecordsBytes bounds a records.json read back (a 24-hour run's).
const maxRecordsBytes = 1 << 30

// Recheck runs the checker again on a saved records.json and writes the
// report into reportDir: a failing run's records become a reproducible
// case without its processes.
func Recheck(path, reportDir string) ([]Invariant, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var r Records
	if err := json.NewDecoder(io.LimitReader(f, maxRecordsBytes)).Decode(&r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if r.T0MS == 0 || r.Max == 0 {
		return nil, fmt.Errorf("%s: t0_ms and max: required (not a chaos records.json?)", path)
	}
	invs := Check(&r)
	return invs, WriteReport(reportDir, &r, NewReport(&r, invs))
}
