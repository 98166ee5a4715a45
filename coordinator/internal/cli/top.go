package cli

import (
	"context"
	"fmt"
	"io"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/coordinator/internal/view"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
)

// topColumns are the metrics top shows per instance, in order.
var topColumns = []string{"cpu", "mem", "load1", "net_rx", "net_tx"}

func topCmd(e *env) *cobra.Command {
	var (
		every      time.Duration
		iterations int
	)
	cmd := &cobra.Command{
		Use:   "top [FLEET]",
		Short: "a live, refreshing view of the fleet's instances and aggregates (Ctrl-C ends it)",
		Args:  cobraMaxOne,
		RunE: func(cmd *cobra.Command, args []string) error {
			if every <= 0 {
				return fmt.Errorf("every (%v): must be > 0", every)
			}
			fleet := ""
			if len(args) == 1 {
				fleet = args[0]
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			c, cc, err := e.client()
			if err != nil {
				return err
			}
			defer cc.Close()
			w := cmd.OutOrStdout()
			for i := 0; iterations == 0 || i < iterations; i++ {
				if i > 0 {
					select {
					case <-ctx.Done():
						return nil
					case <-time.After(every):
					}
				}
				cctx, cancel := context.WithTimeout(ctx, e.timeout)
				up := rpc.Ready(cctx, cc)
				err := e.topFrame(cctx, w, c, fleet, iterations != 1)
				cancel()
				if err != nil {
					return e.reachable(up, err)
				}
			}
			return nil
		},
	}
	cmd.Flags().DurationVar(&every, "every", time.Second, "refresh period")
	cmd.Flags().IntVar(&iterations, "iterations", 0, "frames to draw, then exit (0: until Ctrl-C)")
	return cmd
}

// topFrame draws one screen: per fleet, its capacity and averages, then one
// row per instance.
func (e *env) topFrame(ctx context.Context, w io.Writer, c shoalv1.ControlServiceClient, fleet string, clear bool) error {
	ins, err := c.ListInstances(ctx, &shoalv1.ListInstancesRequest{Fleet: fleet, Stale: e.stale})
	if err != nil {
		return err
	}
	fl, err := c.ListFleets(ctx, &shoalv1.ListFleetsRequest{Stale: e.stale})
	if err != nil {
		return err
	}
	if clear {
		fmt.Fprint(w, "\x1b[H\x1b[2J")
	}
	fmt.Fprintf(w, "shoal top — %s — %s\n\n", e.address, time.Now().UTC().Format(time.TimeOnly))
	byFleet := map[string][]view.Instance{}
	for _, in := range ins.Instances {
		byFleet[in.Fleet] = append(byFleet[in.Fleet], view.InstanceOf(in))
	}
	for _, f := range fl.Fleets {
		if fleet != "" && f.Name != fleet {
			continue
		}
		list := byFleet[f.Name]
		sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
		sums, counts := map[string]float64{}, map[string]int{}
		states := map[string]int{}
		for _, in := range list {
			states[in.State]++
			for _, m := range topColumns {
				if v, ok := in.Metrics[m]; ok && in.LastReportAgeMS >= 0 {
					sums[m] += v
					counts[m]++
				}
			}
		}
		fmt.Fprintf(w, "fleet %s (group %s)  desired %d [%d..%d]  in_service %d  pending %d  draining %d  unhealthy %d%s\n",
			f.Name, f.Asg, f.Desired, f.Min, f.Max, states["in_service"], states["pending"], states["draining"], states["unhealthy"], pausedNote(f))
		avg := "  avg"
		for _, m := range topColumns {
			if counts[m] > 0 {
				avg += fmt.Sprintf("  %s %.1f", m, sums[m]/float64(counts[m]))
			}
		}
		fmt.Fprintln(w, avg)
		rows := [][]string{append([]string{"ID", "STATE", "IP", "AGE_MS"}, append(upper(topColumns), "FLAG")...)}
		for _, in := range list {
			row := []string{in.ID, in.State, in.PrivateIP, fmt.Sprint(in.LastReportAgeMS)}
			for _, m := range topColumns {
				if v, ok := in.Metrics[m]; ok {
					row = append(row, fmt.Sprintf("%.1f", v))
				} else {
					row = append(row, "-")
				}
			}
			rows = append(rows, append(row, in.Flag))
		}
		if err := table(w, rows); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	return nil
}

func pausedNote(f *shoalv1.Fleet) string {
	if f.Paused {
		return "  PAUSED"
	}
	return ""
}

func upper(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToUpper(s)
	}
	return out
}
