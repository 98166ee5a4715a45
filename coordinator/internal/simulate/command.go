package simulate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/coordinator/internal/view"
)

// NewCommand returns `simulate`: replay a trace through Shoal's engine and
// the comparison policies, and print the scorecard. It has no
// --from-cloudwatch source; NewCommandWith gives it one.
func NewCommand() *cobra.Command { return NewCommandWith(nil) }

// NewCommandWith is NewCommand with a fleet history source for
// --from-cloudwatch.
func NewCommandWith(history History) *cobra.Command {
	cfg := DefaultConfig()
	var traces []string
	var policyPath, output, svgPath string
	var tune tuneFlags
	var fromCW, since, writeTrace string
	compare := append([]string(nil), DefaultCompare...)
	price := DefaultPricePerHour
	var sustain float64
	cmd := &cobra.Command{
		Use:   "simulate --trace FILE.csv --policy FILE.json",
		Short: "Replay a load trace through Shoal's decisions and score them against AWS target tracking and the HPA",
		Long: `simulate replays a CSV trace (header time,demand; demand in requests/s)
through a simple fleet model, second by second on a simulated clock, with
Shoal's own decision engine and the comparison policies, and prints the SPEC
RG elasticity scorecard. --policy takes a fleet as 'fleet get NAME -o json'
prints it (min, max, desired and policy); "paused" is ignored, since the
point is to see what the policy would do. Shoal runs the policy as the live
engine would, its sustain included; --sustain replaces that one knob.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Only an explicit --sustain replaces the policy's own: the
			// flag's zero default must not turn the policy's rule off.
			if cmd.Flags().Changed("sustain") {
				cfg.Sustain = &sustain
			}
			if fromCW != "" || writeTrace != "" {
				return fetchHistory(cmd, history, fromCW, since, writeTrace, cfg.CapacityPerInstance)
			}
			if len(traces) == 0 {
				return fmt.Errorf("--trace: required")
			}
			if policyPath == "" {
				return fmt.Errorf("--policy: required")
			}
			if output != "table" && output != "json" {
				return fmt.Errorf("-o: want table or json, got %q", output)
			}
			if !(price >= 0) || math.IsInf(price, 0) {
				return fmt.Errorf("--price-per-hour: must be a finite number >= 0 (got %v)", price)
			}
			if tune.on {
				return runTune(cmd.OutOrStdout(), traces, policyPath, cfg, tune)
			}
			if len(traces) != 1 {
				return fmt.Errorf("--trace: give one trace (several only with --tune), got %d", len(traces))
			}
			if tune.maxU != 0 || tune.writePolicy != "" {
				return fmt.Errorf("--max-timeshare-u and --write-policy: only with --tune")
			}
			res, err := runFiles(traces[0], policyPath, cfg, compare, price)
			if err != nil {
				return err
			}
			if svgPath != "" {
				f, err := os.Create(svgPath)
				if err != nil {
					return fmt.Errorf("--svg: %w", err)
				}
				if err := WriteSVG(f, res); err != nil {
					f.Close()
					return fmt.Errorf("--svg: %w", err)
				}
				if err := f.Close(); err != nil {
					return fmt.Errorf("--svg: %w", err)
				}
			}
			if output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(res.Scores)
			}
			return WriteTable(cmd.OutOrStdout(), res.Scores)
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&traces, "trace", nil, "CSV trace with header time,demand (seconds up to 31 days, requests/s up to 1e9); with --tune, one or more")
	fl.StringVar(&policyPath, "policy", "", "fleet JSON as `fleet get NAME -o json` prints it")
	fl.DurationVar(&cfg.LaunchDelay, "launch-delay", cfg.LaunchDelay, "time from launch to in service")
	fl.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "time from in service to reporting a stable metric")
	fl.DurationVar(&cfg.Drain, "drain", cfg.Drain, "time a scale-in victim stays billed after it stops taking requests")
	fl.Float64Var(&cfg.CapacityPerInstance, "capacity-per-instance", cfg.CapacityPerInstance, "requests/s one instance serves at 100 % utilisation")
	fl.Float64Var(&sustain, "sustain", 0, "replace the policy's sustain, the share of the launch delay a rise must last before Shoal buys it in full, in [0, 2] (0 = at once); unset runs the policy's own")
	fl.Float64Var(&cfg.TargetUtilization, "target-utilization", 0, "utilisation (0..1] that demand in instances is measured at; 0 takes it from the policy's first target")
	fl.StringSliceVar(&compare, "compare", compare, "comparison policies: aws-target-tracking, aws-target-tracking-hires (10 s period; :30 or :60 for others), hpa (empty for none)")
	fl.Float64Var(&price, "price-per-hour", price, "USD per instance-hour for cost_usd; the default is AWS's on-demand Linux price for m7i.large in us-east-1, $0.1008/h (aws.amazon.com/ec2/pricing/on-demand, as listed in January 2025)")
	fl.StringVarP(&output, "output", "o", "table", "table or json")
	fl.StringVar(&svgPath, "svg", "", "also draw demand and supply over time into this SVG file")
	tune.bind(fl)
	fl.StringVar(&fromCW, "from-cloudwatch", "", "build a trace from this fleet's CloudWatch history (policy metric × reporting instances) instead of simulating; needs --write-trace")
	fl.StringVar(&since, "since", "14d", "with --from-cloudwatch: how far back (1 s resolution for the last 3 h, 1 min before; at most 15d)")
	fl.StringVar(&writeTrace, "write-trace", "", "with --from-cloudwatch: write the trace CSV here")
	return cmd
}

// DefaultPricePerHour is AWS's on-demand Linux price for an m7i.large in
// us-east-1 as its on-demand pricing page listed it in January 2025
// (https://aws.amazon.com/ec2/pricing/on-demand/): $0.1008 an hour.
const DefaultPricePerHour = 0.1008

func runFiles(tracePath, policyPath string, cfg Config, compare []string, price float64) (*Result, error) {
	tf, err := os.Open(tracePath)
	if err != nil {
		return nil, fmt.Errorf("--trace: %w", err)
	}
	defer tf.Close()
	tr, err := ReadTrace(tf)
	if err != nil {
		return nil, fmt.Errorf("--trace %s: %w", tracePath, err)
	}
	pb, err := os.ReadFile(policyPath)
	if err != nil {
		return nil, fmt.Errorf("--policy: %w", err)
	}
	fleet, err := view.ParseFleet(pb)
	if err != nil {
		return nil, fmt.Errorf("--policy %s: %w", policyPath, err)
	}
	var cmp []string
	for _, c := range compare {
		if c = strings.TrimSpace(c); c != "" {
			cmp = append(cmp, c)
		}
	}
	res, err := Run(tr, Setup{Fleet: fleet, Config: cfg, Compare: cmp, PricePerHour: price})
	if errors.Is(err, ErrBadTrace) {
		return nil, fmt.Errorf("--trace %s: %w", tracePath, err)
	}
	if err != nil {
		return nil, fmt.Errorf("--policy %s: %w", policyPath, err)
	}
	return res, nil
}

// WriteTable prints one row per policy.
func WriteTable(w io.Writer, scores []Score) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "POLICY\tACCURACY_U\tACCURACY_O\tTIMESHARE_U\tTIMESHARE_O\tJITTER\tINSTANCE_HOURS\tCOST_USD\tSLO_BREACH_S\t")
	for _, s := range scores {
		fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%.2f\t%.2f\t%d\t\n",
			s.Policy, s.AccuracyU, s.AccuracyO, s.TimeshareU, s.TimeshareO, s.Jitter, s.InstanceHours, s.CostUSD, s.SLOBreachS)
	}
	return tw.Flush()
}
