package demo

import (
	"context"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
)

// FleetResult is one fleet's line in summary.json's fleets.
type FleetResult struct {
	Name string `json:"name"`
	// Scaler is ScalerShoal or ScalerAWS.
	Scaler string `json:"scaler"`
	Group  string `json:"group"`
	// ReactionS is from the spike crossing the target (SpikeCrossedT) to
	// the group's first capacity increase (FirstIncreaseT): the start of
	// its first launch activity after the spike began, read from
	// DescribeScalingActivities the same way for both fleets. -1 if the
	// fleet never scaled out.
	ReactionS      float64 `json:"reaction_s"`
	SpikeCrossedT  float64 `json:"spike_crossed_target_t"`
	FirstIncreaseT float64 `json:"first_increase_t"`
	TotalRequests  int     `json:"total_requests"`
	// FailedRequests = Errors + Unsent: answered with an error or a
	// timeout, or never sent because every one of the generator's
	// connections was still waiting (load the fleet could not take).
	FailedRequests int     `json:"failed_requests"`
	Errors         int     `json:"errors"`
	Unsent         int     `json:"unsent"`
	PeakP99ms      float64 `json:"peak_p99_ms"`
	PeakDesired    int     `json:"peak_desired"`
	// InstanceSeconds sums, over the timeline's seconds, the group's
	// instances pending or running in the cloud (what EC2 bills), over the
	// same seconds for every fleet.
	InstanceSeconds int `json:"instance_seconds"`
	// BackAtMinT is the first second after the spike with the fleet at
	// min, nothing draining; -1 if it was not back by the end.
	BackAtMinT int `json:"back_at_min_t"`
}

// launches returns each group's first launch after the spike began, as
// timeline seconds; a group missing never launched (or could not be read,
// which is printed).
func (r *run) launches(ctx context.Context) map[string]float64 {
	as, err := r.autoscaling(ctx)
	out := map[string]float64{}
	if err != nil {
		fmt.Fprintf(r.cfg.Out, "     # scaling activities: %v\n", err)
		return out
	}
	groups := []string{r.group}
	if r.aws != nil {
		groups = append(groups, r.aws.group)
	}
	from := r.t0.Add(time.Duration(r.spikeAt) * time.Second)
	for _, g := range groups {
		if g == "" {
			continue
		}
		at, ok, err := firstLaunch(ctx, as, g, from)
		if err != nil {
			fmt.Fprintf(r.cfg.Out, "     # scaling activities: %v\n", err)
			continue
		}
		if ok {
			out[g] = at.Sub(r.t0).Seconds()
		}
	}
	return out
}

func (r *run) autoscaling(ctx context.Context) (*autoscaling.Client, error) {
	if r.aws != nil {
		return r.aws.as, nil
	}
	cfg, err := r.sb.AWSConfig(ctx)
	if err != nil {
		return nil, err
	}
	return autoscaling.NewFromConfig(cfg), nil
}

// fleetResults builds summary.json's fleets from the timeline: Shoal's
// first, then the AWS-scaled one in a compare run.
func (r *run) fleetResults(s *Summary, totals, awsTotals loadTotals, complete bool, launches map[string]float64) []FleetResult {
	cfg := r.cfg
	shoal := FleetResult{Name: Fleet, Scaler: ScalerShoal, Group: r.group, TotalRequests: s.TotalRequests, FailedRequests: s.FailedRequests + totals.unsent,
		Errors: s.FailedRequests, Unsent: totals.unsent,
		PeakP99ms: s.PeakP99ms, PeakDesired: s.PeakDesired, SpikeCrossedT: s.SpikeCrossedTargetT, BackAtMinT: s.BackAtMinT}
	for _, row := range r.rows {
		shoal.InstanceSeconds += row.Running
	}
	shoal.FirstIncreaseT, shoal.ReactionS = reaction(s.SpikeCrossedTargetT, launches, r.group)
	out := []FleetResult{shoal}
	if r.aws == nil {
		return out
	}
	a := FleetResult{Name: AWSFleet, Scaler: ScalerAWS, Group: r.aws.group, TotalRequests: awsTotals.requests, Errors: awsTotals.errors,
		Unsent: awsTotals.unsent, SpikeCrossedT: -1, BackAtMinT: -1}
	prevInService := cfg.Min
	for _, row := range r.rows {
		sr := row.AWS
		if sr == nil {
			continue
		}
		if !complete {
			// The generators' totals are missing; count what the timeline saw.
			a.TotalRequests += sr.RPS
			a.Errors += sr.Errors
		}
		a.InstanceSeconds += sr.Running
		a.PeakP99ms = max(a.PeakP99ms, sr.P99ms)
		a.PeakDesired = max(a.PeakDesired, sr.Desired)
		if a.SpikeCrossedT < 0 && row.T > r.spikeAt && float64(sr.RPS) > float64(max(prevInService, 1)*cfg.Capacity)*cfg.Target/100 {
			a.SpikeCrossedT = float64(row.T - 1)
		}
		prevInService = sr.InService
		if a.BackAtMinT < 0 && row.T > r.spikeEnd && sr.atMin(cfg.Min) {
			a.BackAtMinT = row.T
		}
	}
	a.FailedRequests = a.Errors + a.Unsent
	a.FirstIncreaseT, a.ReactionS = reaction(a.SpikeCrossedT, launches, r.aws.group)
	return append(out, a)
}

func reaction(crossed float64, launches map[string]float64, group string) (first, react float64) {
	first, ok := launches[group]
	if !ok {
		return -1, -1
	}
	if crossed < 0 {
		return first, -1
	}
	return first, math.Max(0, first-crossed)
}

// printFleets prints the fleets side by side, with the ratios the issue's
// goal names.
func printFleets(w io.Writer, fl []FleetResult) {
	if len(fl) < 2 {
		return
	}
	fmt.Fprintf(w, "\n  %-8s %-20s %10s %8s %8s %10s %9s %11s\n", "fleet", "scaler", "reaction", "errors", "unsent", "peak p99", "inst·s", "back at min")
	for _, f := range fl {
		back := "not by the end"
		if f.BackAtMinT >= 0 {
			back = fmt.Sprintf("t=%ds", f.BackAtMinT)
		}
		react := "none"
		if f.ReactionS >= 0 {
			react = fmt.Sprintf("%.1fs", f.ReactionS)
		}
		fmt.Fprintf(w, "  %-8s %-20s %10s %8d %8d %8.1fms %9d %11s\n", f.Name, f.Scaler, react, f.Errors, f.Unsent, f.PeakP99ms, f.InstanceSeconds, back)
	}
	s, a := fl[0], fl[1]
	if s.ReactionS > 0 && a.ReactionS >= 0 {
		fmt.Fprintf(w, "  Shoal reacted %.1f× sooner than AWS target tracking at 10 s (goal: ≥ 10×)\n", a.ReactionS/s.ReactionS)
	}
	if a.InstanceSeconds > 0 {
		fmt.Fprintf(w, "  Shoal used %.2f× AWS's instance-seconds (goal: ≤ 1.10×)\n", float64(s.InstanceSeconds)/float64(a.InstanceSeconds))
	}
}
