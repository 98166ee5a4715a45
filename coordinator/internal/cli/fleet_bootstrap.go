package cli

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/coordinator/internal/bootstrap"
	awscloud "github.com/shoal-dev/shoal/coordinator/internal/cloud/aws"
	"github.com/shoal-dev/shoal/coordinator/internal/view"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
)

// controlAPI adapts the control client to what bootstrap needs.
type controlAPI struct{ c shoalv1.ControlServiceClient }

func (a controlAPI) GetFleet(ctx context.Context, name string) (*shoalv1.Fleet, error) {
	r, err := a.c.GetFleet(ctx, &shoalv1.GetFleetRequest{Fleet: name})
	if err != nil {
		return nil, err
	}
	return r.Fleet, nil
}

func (a controlAPI) CreateFleet(ctx context.Context, f *shoalv1.Fleet) (*shoalv1.Fleet, error) {
	r, err := a.c.CreateFleet(ctx, &shoalv1.CreateFleetRequest{Fleet: f})
	if err != nil {
		return nil, err
	}
	return r.Fleet, nil
}

func (a controlAPI) UpdateFleet(ctx context.Context, req *shoalv1.UpdateFleetRequest) (*shoalv1.Fleet, error) {
	r, err := a.c.UpdateFleet(ctx, req)
	if err != nil {
		return nil, err
	}
	return r.Fleet, nil
}

func (a controlAPI) SetPolicy(ctx context.Context, fleet string, p *shoalv1.ScalingPolicy) (*shoalv1.Fleet, error) {
	r, err := a.c.SetPolicy(ctx, &shoalv1.SetPolicyRequest{Fleet: fleet, Policy: p})
	if err != nil {
		return nil, err
	}
	return r.Fleet, nil
}

// Coordinators are the addresses agents of a bootstrapped fleet dial.
func (a controlAPI) Coordinators(ctx context.Context) ([]string, error) {
	r, err := a.c.GetStatus(ctx, &shoalv1.GetStatusRequest{})
	if err != nil {
		return nil, err
	}
	// The fleet's agents dial these (the shoal:coordinators tag): each
	// node's agent port when it has one, else its gRPC port.
	var out []string
	for _, n := range r.Nodes {
		switch {
		case n.AgentAddr != "":
			out = append(out, n.AgentAddr)
		case n.RpcAddr != "":
			out = append(out, n.RpcAddr)
		}
	}
	sort.Strings(out)
	return out, nil
}

func fleetBootstrapCmd(e *env) *cobra.Command {
	var (
		s       = bootstrap.DefaultSpec()
		pf      policyFlags
		subnets string
		coords  string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use: "bootstrap NAME --from-instance i-… --subnets a,b --min 2 --max 8 --metric cpu --target 50 [--app-port 8080] [--dry-run]",
		Short: "make an image from a running instance, a launch template, an Auto Scaling group in private subnets " +
			"with Shoal's lifecycle hook, and the fleet with its policy; idempotent",
		Args: exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			s.Fleet = args[0]
			for _, sn := range strings.Split(subnets, ",") {
				if sn = strings.TrimSpace(sn); sn != "" {
					s.Subnets = append(s.Subnets, sn)
				}
			}
			if coords != "" {
				s.Coordinators = strings.Split(coords, ",")
			}
			p, err := pf.policy(cmd)
			if err != nil {
				return err
			}
			if len(p.TargetTracking)+len(p.StepScaling) > 0 {
				s.Policy = p
			}
			if err := s.Validate(); err != nil {
				return err
			}
			c, cc, err := e.client()
			if err != nil {
				return err
			}
			defer cc.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			cl, _, err := awscloud.Open(ctx, awscloud.DefaultConfig())
			if err != nil {
				return err
			}
			progress := cmd.ErrOrStderr()
			if s.DryRun {
				progress = cmd.OutOrStdout()
			}
			up := rpc.Ready(ctx, cc)
			items, err := (&bootstrap.Runner{Cloud: cl, Control: controlAPI{c}, Out: progress}).Run(ctx, s)
			if err != nil {
				return e.reachable(up, err)
			}
			out := make([]view.BootstrapItem, 0, len(items))
			for _, it := range items {
				out = append(out, view.BootstrapItem{Kind: it.Kind, ID: it.ID, Created: it.Created, Note: it.Note})
			}
			if e.output == "json" {
				return printJSON(cmd.OutOrStdout(), out)
			}
			rows := [][]string{{"KIND", "ID", "CREATED", "NOTE"}}
			for _, it := range out {
				rows = append(rows, []string{it.Kind, it.ID, fmt.Sprint(it.Created), it.Note})
			}
			return table(cmd.OutOrStdout(), rows)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&s.FromInstance, "from-instance", "", "running instance to bake the image from")
	fl.StringVar(&subnets, "subnets", "", "comma-separated (private) subnet ids for the group")
	fl.Int32Var(&s.Min, "min", 0, "fleet and group minimum")
	fl.Int32Var(&s.Max, "max", 0, "fleet and group maximum")
	fl.Int32Var(&s.Desired, "desired", 0, "initial capacity (default: --min)")
	fl.Int32Var(&s.AppPort, "app-port", 0, "port the application serves on in each instance (for shoal-lb)")
	fl.StringVar(&s.ASG, "asg", "", "group name (default shoal-NAME)")
	fl.StringVar(&s.Template, "launch-template", "", "launch template name (default shoal-NAME)")
	fl.StringVar(&s.Image, "image-name", "", "image name (default shoal-NAME-INSTANCE)")
	fl.StringVar(&s.InstanceType, "instance-type", "", "instance type for the launch template (default: the image's)")
	fl.StringVar(&coords, "coordinators", "", "addresses for the shoal:coordinators tag (default: the cluster's members)")
	fl.DurationVar(&s.HookHeartbeat, "hook-heartbeat", s.HookHeartbeat, "TERMINATING lifecycle hook heartbeat timeout")
	fl.DurationVar(&s.ImageTimeout, "image-timeout", s.ImageTimeout, "longest wait for the image to become available")
	fl.DurationVar(&timeout, "bootstrap-timeout", 15*time.Minute, "bound on the whole bootstrap")
	fl.BoolVar(&s.DryRun, "dry-run", false, "print the AWS calls it would make, change nothing")
	fl.Int32Var(&s.WarmPoolMin, "warm-pool-min", 0, "give the group a warm pool of at least N pre-initialised instances (0: none)")
	fl.StringVar(&s.WarmPoolState, "warm-pool-state", s.WarmPoolState, "what warm-pool instances wait in: Stopped, Running or Hibernated")
	fl.StringVar(&pf.metric, "metric", "", "target-tracking metric: cpu, mem, requests_per_target or a custom agent metric")
	fl.Float64Var(&pf.target, "target", 0, "target value of --metric")
	fl.Float64Var(&pf.tolerance, "tolerance", 0, "fraction of the target inside which nothing changes (0: default 0.1)")
	fl.DurationVar(&pf.warmup, "warmup", 0, "leave new instances out of the metric for this long")
	fl.DurationVar(&pf.inWindow, "scale-in-window", 0, "scale-in stabilisation window (0: default 60s)")
	fl.DurationVar(&pf.outWindow, "scale-out-window", 0, "scale-out stabilisation window")
	pf.bindSustain(fl)
	for _, req := range []string{"from-instance", "subnets", "min", "max"} {
		_ = cmd.MarkFlagRequired(req)
	}
	return cmd
}
