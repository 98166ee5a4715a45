package simulate

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"github.com/shoal-dev/shoal/coordinator/internal/view"
)

// tuneFlags are simulate's --tune options.
type tuneFlags struct {
	on          bool
	maxU        float64
	writePolicy string
	workers     int
}

func (t *tuneFlags) bind(fl *pflag.FlagSet) {
	fl.BoolVar(&t.on, "tune", false, "search the policy's knobs (target, tolerance, scale-in window, warmup, sustain) on the traces and print the Pareto front of timeshare_u against instance-hours")
	fl.Float64Var(&t.maxU, "max-timeshare-u", 0, "with --tune: pick the cheapest policy whose timeshare_u (mean over the traces) is below this, in (0, 1]")
	fl.StringVar(&t.writePolicy, "write-policy", "", "with --tune and --max-timeshare-u: write the picked policy to this file, in the form `policy set --file` takes")
	fl.IntVar(&t.workers, "tune-workers", 0, "with --tune: simulations run at once (0: one per core)")
}

func runTune(w io.Writer, tracePaths []string, policyPath string, cfg Config, t tuneFlags) error {
	switch {
	case t.maxU != 0 && !(t.maxU > 0 && t.maxU <= 1):
		return fmt.Errorf("--max-timeshare-u: must be in (0, 1] (got %v)", t.maxU)
	case t.writePolicy != "" && t.maxU == 0:
		return fmt.Errorf("--write-policy: needs --max-timeshare-u to pick a policy off the front")
	case t.workers < 0 || t.workers > 256:
		return fmt.Errorf("--tune-workers: must be in [0, 256] (got %d)", t.workers)
	case policyPath == "":
		return fmt.Errorf("--policy: required")
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	var trs []Trace
	for _, p := range tracePaths {
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("--trace: %w", err)
		}
		tr, err := ReadTrace(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("--trace %s: %w", p, err)
		}
		trs = append(trs, tr)
	}
	pb, err := os.ReadFile(policyPath)
	if err != nil {
		return fmt.Errorf("--policy: %w", err)
	}
	fleet, err := view.ParseFleet(pb)
	if err != nil {
		return fmt.Errorf("--policy %s: %w", policyPath, err)
	}
	cands, err := Tune(trs, fleet, cfg, t.workers)
	if err != nil {
		return err
	}
	front := Pareto(cands)
	fmt.Fprintf(w, "Pareto front of %d candidates on %d trace(s): timeshare_u and cost_ratio (instance-hours over the given policy's) are means over the traces, instance-hours and SLO breach sums\n", len(cands), len(trs))
	if err := WriteFront(w, front); err != nil {
		return err
	}
	if t.maxU == 0 {
		return nil
	}
	pick, err := Cheapest(front, t.maxU)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\ncheapest with timeshare_u below %v: timeshare_u %.3f, %.2f instance-hours, sustain %.2g\n", t.maxU, pick.TimeshareU, pick.InstanceHours, pick.Policy.GetSustain())
	if t.writePolicy == "" {
		return nil
	}
	b, err := json.MarshalIndent(view.PolicyOf(pick.Policy), "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(t.writePolicy, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("--write-policy: %w", err)
	}
	fmt.Fprintf(w, "wrote %s\n", t.writePolicy)
	return nil
}
