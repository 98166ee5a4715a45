package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/shoal-dev/shoal/coordinator/internal/view"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func policyCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "set or show a fleet's scaling policy"}
	cmd.AddCommand(policySetCmd(e), policyGetCmd(e))
	return cmd
}

type policyFlags struct {
	metric                      string
	target, tolerance           float64
	warmup, inWindow, outWindow time.Duration
	stepMetric                  string
	steps                       []string
	file                        string
	sustain                     float64
}

func policySetCmd(e *env) *cobra.Command {
	var f policyFlags
	cmd := &cobra.Command{
		Use:   "set FLEET --metric cpu --target 50 [--tolerance F] [--scale-in-window D] [--scale-out-window D] [--warmup D] [--sustain F] [--step-metric M --step LOWER:UPPER:TYPE:ADJ ...] | --file POLICY.json",
		Short: "validate and store a fleet's scaling policy",
		Args:  exactArgs("FLEET"),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := f.policy(cmd)
			if err != nil {
				return err
			}
			return e.call(cmd, func(ctx context.Context, c shoalv1.ControlServiceClient) error {
				resp, err := c.SetPolicy(ctx, &shoalv1.SetPolicyRequest{Fleet: args[0], Policy: p})
				if err != nil {
					return err
				}
				return e.printPolicy(cmd, resp.Fleet.Policy)
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.metric, "metric", "", "target-tracking metric: cpu, mem, load1, net_rx, net_tx, disk, requests_per_target or a custom name")
	fl.Float64Var(&f.target, "target", 0, "target value of --metric")
	fl.Float64Var(&f.tolerance, "tolerance", 0, "fraction of the target inside which nothing changes (0: default 0.1)")
	fl.DurationVar(&f.warmup, "warmup", 0, "leave new instances out of the metric for this long")
	fl.DurationVar(&f.inWindow, "scale-in-window", 0, "scale-in stabilisation window")
	fl.DurationVar(&f.outWindow, "scale-out-window", 0, "scale-out stabilisation window")
	fl.StringVar(&f.stepMetric, "step-metric", "", "step-scaling metric")
	fl.StringArrayVar(&f.steps, "step", nil, "step band LOWER:UPPER:TYPE:ADJUSTMENT, bounds may be empty, TYPE change_in_capacity|percent_change|exact_capacity (repeatable)")
	fl.StringVar(&f.file, "file", "", "read the whole policy from a JSON file (the `policy get -o json` form)")
	f.bindSustain(fl)
	return cmd
}

// bindSustain binds --sustain, which policy set and fleet bootstrap share.
func (f *policyFlags) bindSustain(fl *pflag.FlagSet) {
	fl.Float64Var(&f.sustain, "sustain", 0, "buy a rise only once it has lasted this share of the launch delay, in [0, 2] (0: at once); `simulate --tune` finds a value")
}

func (f *policyFlags) policy(cmd *cobra.Command) (*shoalv1.ScalingPolicy, error) {
	if f.file != "" {
		others := false
		for _, name := range []string{"metric", "target", "tolerance", "warmup", "scale-in-window", "scale-out-window", "sustain", "step-metric", "step"} {
			others = others || cmd.Flags().Changed(name)
		}
		if others {
			return nil, errors.New("file: give the whole policy in the file, without other policy flags")
		}
		b, err := os.ReadFile(f.file)
		if err != nil {
			return nil, fmt.Errorf("file (%q): %w", f.file, err)
		}
		p, err := parsePolicyJSON(b)
		if err != nil {
			return nil, fmt.Errorf("file (%q): %w", f.file, err)
		}
		return p, nil
	}
	p := &shoalv1.ScalingPolicy{
		Warmup: durationpb.New(f.warmup), ScaleInWindow: durationpb.New(f.inWindow), ScaleOutWindow: durationpb.New(f.outWindow),
		Sustain: f.sustain,
	}
	if f.metric != "" || cmd.Flags().Changed("target") {
		if f.metric == "" {
			return nil, errors.New("metric: required with --target")
		}
		p.TargetTracking = append(p.TargetTracking, &shoalv1.TargetTracking{Metric: f.metric, Target: f.target, Tolerance: f.tolerance})
	}
	if len(f.steps) > 0 || f.stepMetric != "" {
		if f.stepMetric == "" {
			return nil, errors.New("step-metric: required with --step")
		}
		ss := &shoalv1.StepScaling{Metric: f.stepMetric}
		for i, s := range f.steps {
			st, err := parseStep(s)
			if err != nil {
				return nil, fmt.Errorf("step[%d] (%q): %w", i, s, err)
			}
			ss.Steps = append(ss.Steps, st)
		}
		p.StepScaling = append(p.StepScaling, ss)
	}
	return p, nil
}

// parsePolicyJSON reads the `policy get -o json` form. It checks the JSON
// only; the policy's meaning is the server's decide.Validate.
func parsePolicyJSON(b []byte) (*shoalv1.ScalingPolicy, error) {
	var v view.Policy
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	// Decode stops after one value; a second policy or a stray brace after
	// it would otherwise be dropped without a word.
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("want one JSON object, found more after it")
	}
	return v.Proto()
}

func parseStep(s string) (*shoalv1.Step, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 4 {
		return nil, errors.New("want LOWER:UPPER:TYPE:ADJUSTMENT")
	}
	st := &shoalv1.Step{}
	bound := func(name, v string) (*float64, error) {
		if v == "" {
			return nil, nil
		}
		x, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return nil, fmt.Errorf("%s (%q): not a number", name, v)
		}
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, fmt.Errorf("%s (%q): not a finite number; leave it empty for no bound", name, v)
		}
		return &x, nil
	}
	var err error
	if st.Lower, err = bound("lower", parts[0]); err != nil {
		return nil, err
	}
	if st.Upper, err = bound("upper", parts[1]); err != nil {
		return nil, err
	}
	if st.AdjustmentType, err = view.ParseAdjustmentType(parts[2]); err != nil {
		return nil, err
	}
	if st.Adjustment, err = strconv.ParseFloat(parts[3], 64); err != nil || math.IsNaN(st.Adjustment) || math.IsInf(st.Adjustment, 0) {
		return nil, fmt.Errorf("adjustment (%q): not a finite number", parts[3])
	}
	return st, nil
}

func policyGetCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "get FLEET",
		Short: "show a fleet's scaling policy",
		Args:  exactArgs("FLEET"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return e.call(cmd, func(ctx context.Context, c shoalv1.ControlServiceClient) error {
				resp, err := c.GetPolicy(ctx, &shoalv1.GetPolicyRequest{Fleet: args[0], Stale: e.stale})
				if err != nil {
					return err
				}
				return e.printPolicy(cmd, resp.Policy)
			})
		},
	}
}

func (e *env) printPolicy(cmd *cobra.Command, p *shoalv1.ScalingPolicy) error {
	w := cmd.OutOrStdout()
	if e.output == "json" {
		v := view.PolicyOf(p)
		if v == nil {
			return printJSON(w, nil)
		}
		return printJSON(w, v)
	}
	if p == nil {
		fmt.Fprintln(w, "no policy: the fleet is scaled by hand only")
		return nil
	}
	rows := [][]string{{"KIND", "METRIC", "DETAIL"}}
	for _, t := range p.TargetTracking {
		rows = append(rows, []string{"target_tracking", t.Metric, fmt.Sprintf("target %g tolerance %g", t.Target, t.Tolerance)})
	}
	for _, s := range p.StepScaling {
		for _, st := range s.Steps {
			lo, hi := "-inf", "+inf"
			if st.Lower != nil {
				lo = strconv.FormatFloat(*st.Lower, 'g', -1, 64)
			}
			if st.Upper != nil {
				hi = strconv.FormatFloat(*st.Upper, 'g', -1, 64)
			}
			rows = append(rows, []string{"step", s.Metric, fmt.Sprintf("[%s, %s) %s %g", lo, hi, view.AdjustmentTypeWord(st.AdjustmentType), st.Adjustment)})
		}
	}
	if err := table(w, rows); err != nil {
		return err
	}
	fmt.Fprintf(w, "warmup %s  scale-out window %s  scale-in window %s",
		p.GetWarmup().AsDuration(), p.GetScaleOutWindow().AsDuration(), p.GetScaleInWindow().AsDuration())
	if p.Sustain != 0 {
		fmt.Fprintf(w, "  sustain %g (of the launch delay)", p.Sustain)
	}
	fmt.Fprintln(w)
	return nil
}
