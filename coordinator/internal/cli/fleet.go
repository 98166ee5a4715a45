package cli

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/coordinator/internal/view"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func fleetCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{Use: "fleet", Short: "create, inspect, change and delete fleets"}
	cmd.AddCommand(fleetCreateCmd(e), fleetGetCmd(e), fleetListCmd(e), fleetUpdateCmd(e), fleetDeleteCmd(e), fleetBootstrapCmd(e))
	return cmd
}

// printFleet prints one fleet as view.Fleet JSON or as key/value lines.
func (e *env) printFleet(w io.Writer, f *shoalv1.Fleet, delays ...*shoalv1.LaunchDelay) error {
	v := view.FleetOf(f)
	v.LaunchDelays = view.LaunchDelaysOf(delays)
	if e.output == "json" {
		return printJSON(w, v)
	}
	rows := [][]string{
		{"name:", v.Name}, {"asg:", v.ASG},
		{"min/desired/max:", fmt.Sprintf("%d/%d/%d", v.Min, v.Desired, v.Max)},
		{"paused:", strconv.FormatBool(v.Paused)},
	}
	if v.AppPort != 0 {
		rows = append(rows, []string{"app_port:", strconv.Itoa(int(v.AppPort))})
	}
	if len(v.AlarmActions) > 0 {
		rows = append(rows, []string{"alarm_actions:", strings.Join(v.AlarmActions, ", ")})
	}
	if v.PublishPerInstance {
		rows = append(rows, []string{"publish_per_instance:", "true"})
	}
	if v.GroupStatus != "" {
		rows = append(rows, []string{"group_status:", v.GroupStatus})
	}
	rows = append(rows, []string{"policy:", policySummary(f.Policy)}, []string{"updated_at:", v.UpdatedAt})
	for _, d := range v.LaunchDelays {
		rows = append(rows, []string{"launch_delay_" + d.Kind + ":", fmt.Sprintf("p50 %v, p90 %v (last %d launches)",
			time.Duration(d.P50MS)*time.Millisecond, time.Duration(d.P90MS)*time.Millisecond, d.Samples)})
	}
	return table(w, rows)
}

func fleetRows(fs []*shoalv1.Fleet) [][]string {
	rows := [][]string{{"NAME", "ASG", "MIN", "DESIRED", "MAX", "PAUSED", "POLICY"}}
	for _, f := range fs {
		rows = append(rows, []string{f.Name, f.Asg, itoa(f.Min), itoa(f.Desired), itoa(f.Max), strconv.FormatBool(f.Paused), policySummary(f.Policy)})
	}
	return rows
}

func itoa(v int32) string { return strconv.Itoa(int(v)) }

func policySummary(p *shoalv1.ScalingPolicy) string {
	if p == nil {
		return "none (manual only)"
	}
	var parts []string
	for _, t := range p.TargetTracking {
		parts = append(parts, fmt.Sprintf("%s→%g", t.Metric, t.Target))
	}
	for _, s := range p.StepScaling {
		parts = append(parts, fmt.Sprintf("%s steps×%d", s.Metric, len(s.Steps)))
	}
	if len(parts) == 0 {
		return "empty"
	}
	if p.Sustain != 0 {
		parts = append(parts, fmt.Sprintf("sustain %g", p.Sustain))
	}
	return strings.Join(parts, ", ")
}
