package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"

	"github.com/shoal-dev/shoal/deploy/internal/sandbox"
)

// The compare run's second fleet: the same image, bounds and subnets as
// Shoal's, behind a load balancer of its own, scaled by the local cloud's
// AWS target tracking. Shoal knows it only as a paused fleet without a
// policy: the coordinators feed its load balancer its backends and drain
// the instances its group terminates (through the TERMINATING hook, the
// part an ALB target group's deregistration delay plays on AWS), and make no
// decision for it. The test asserts it has none.
const (
	// AWSFleet is the second fleet's name.
	AWSFleet = "web-aws"
	// ScalerShoal and ScalerAWS name who scales a fleet in summary.json.
	ScalerShoal = "shoal"
	ScalerAWS   = "aws-target-tracking"
	// AWSNamespace and AWSMetric are where the stand-in CloudWatch agent
	// publishes demoapp's utilisation: the agent's default namespace and
	// the Prometheus metric's own name, as the agent's scrape would.
	AWSNamespace = "CWAgent"
	AWSMetric    = "demoapp_utilization"
	// AWSPeriod is the policy's metric period: AWS's best, the shortest
	// target tracking accepts (10, 30 or 60).
	AWSPeriod = 10
	// awsWarmup is the policy's EstimatedInstanceWarmup in seconds. An
	// instance here boots in about a second and demoapp serves at once;
	// one metric period lets a new instance contribute a whole datapoint
	// before it counts as ready. AWS allows 0; less than a period would
	// count instances with no datapoint yet.
	awsWarmup = AWSPeriod
	// awsPolicy is the target tracking policy's name.
	awsPolicy = "demo-util-target"
)

// awsSide is the AWS-scaled fleet during a compare run.
type awsSide struct {
	fleet, group string
	lbURL        string
	policyARN    string
	alarms       []string
	obs          *observer
	as           *autoscaling.Client
	agent        *cwAgent
	gens         []*loadgen
	lastDesired  int
}

// SideRow is one second of the AWS fleet on the timeline.
type SideRow struct {
	RPS       int     `json:"rps"`
	Errors    int     `json:"errors"`
	P99ms     float64 `json:"p99_ms"`
	Util      float64 `json:"util"`
	UtilKnown bool    `json:"-"`
	Desired   int     `json:"desired"`
	InService int     `json:"in_service"`
	Draining  int     `json:"draining"`
	// Running counts the group's instances that are pending or running in
	// the cloud: what is billed.
	Running int `json:"running"`
	// Change is the group's desired capacity change seen this second, e.g.
	// "2->4".
	Change string `json:"change"`
}

// setupAWS bootstraps the second fleet from the golden instance, pauses it
// in Shoal, gives its group AWS's target tracking policy, starts its load
// balancer and the stand-in CloudWatch agent, and waits until it serves.
func (r *run) setupAWS(ctx context.Context) (*awsSide, error) {
	cfg, sb, out := r.cfg, r.sb, r.cfg.Out
	// No --metric: the fleet has no Shoal policy at all, and is paused at
	// once, so even the bounds check of a policy-less fleet never runs.
	raw, err := sb.Bootstrap(ctx, sandbox.Bootstrap{Fleet: AWSFleet, Min: cfg.Min, Max: cfg.Max, Target: cfg.Target})
	if err != nil {
		return nil, err
	}
	var made []Made
	if err := json.Unmarshal(raw, &made); err != nil {
		return nil, fmt.Errorf("bootstrap %s output %q: %w", AWSFleet, raw, err)
	}
	a := &awsSide{fleet: AWSFleet}
	for _, m := range made {
		if m.Kind == "auto-scaling-group" {
			a.group = m.ID
		}
	}
	if a.group == "" {
		return nil, fmt.Errorf("bootstrap %s made no auto-scaling-group: %s", AWSFleet, raw)
	}
	if _, err := sb.CLI(ctx, "pause", AWSFleet); err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "✓ second fleet %s (group %s) from the same image, bounds %d–%d; paused in Shoal: no Shoal policy, no Shoal decision\n", AWSFleet, a.group, cfg.Min, cfg.Max)
	awsCfg, err := sb.AWSConfig(ctx)
	if err != nil {
		return nil, err
	}
	a.as = autoscaling.NewFromConfig(awsCfg)
	dims := []astypes.MetricDimension{{Name: aws.String("AutoScalingGroupName"), Value: aws.String(a.group)}}
	put, err := a.as.PutScalingPolicy(ctx, &autoscaling.PutScalingPolicyInput{
		AutoScalingGroupName: aws.String(a.group), PolicyName: aws.String(awsPolicy), PolicyType: aws.String("TargetTrackingScaling"),
		EstimatedInstanceWarmup: aws.Int32(awsWarmup),
		TargetTrackingConfiguration: &astypes.TargetTrackingConfiguration{
			TargetValue: aws.Float64(cfg.Target),
			CustomizedMetricSpecification: &astypes.CustomizedMetricSpecification{
				Namespace: aws.String(AWSNamespace), MetricName: aws.String(AWSMetric), Dimensions: dims,
				Statistic: astypes.MetricStatisticAverage, Period: aws.Int32(AWSPeriod),
			},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("put scaling policy on %s: %w", a.group, err)
	}
	a.policyARN = aws.ToString(put.PolicyARN)
	for _, al := range put.Alarms {
		a.alarms = append(a.alarms, aws.ToString(al.AlarmName))
	}
	fmt.Fprintf(out, "✓ AWS target tracking on %s: %s/%s Average, target %.0f, period %ds, warmup %ds; its alarms %s\n",
		a.group, AWSNamespace, AWSMetric, cfg.Target, AWSPeriod, awsWarmup, strings.Join(a.alarms, ", "))
	a.lbURL, _, err = sb.StartFleetLB(ctx, "lb-aws", AWSFleet)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "✓ second load balancer shoal-lb at %s for %s\n", a.lbURL, AWSFleet)
	if a.obs, err = newObserver(sb.Dial, sb.RPCAddrs()[0], AWSFleet, metric); err != nil {
		return nil, err
	}
	if err := waitServingAt(ctx, a.obs, a.lbURL, cfg.Min); err != nil {
		a.obs.close()
		return nil, err
	}
	a.agent = newCWAgent(sb, awsCfg, a.group, cfg.AgentFlush)
	fmt.Fprintf(out, "✓ CloudWatch agent stand-in: scrapes %s on each running instance of %s every 1s, PutMetricData (StorageResolution 1) every %s\n",
		AWSMetric, a.group, cfg.AgentFlush)
	return a, nil
}

func (a *awsSide) close() {
	if a.obs != nil {
		a.obs.close()
	}
}

// sample fills the AWS fleet's part of timeline row k.
func (a *awsSide) sample(ctx context.Context, k int, running map[string]int) (SideRow, error) {
	row := SideRow{Running: running[a.group]}
	for _, g := range a.gens {
		if s, ok := g.second(k); ok {
			row.RPS += s.requests
			row.Errors += s.errors
			row.P99ms = max(row.P99ms, s.p99ms)
		}
	}
	st, err := a.obs.state(ctx)
	if err != nil {
		return row, err
	}
	row.InService, row.Draining = st.inService, st.draining
	row.Util, row.UtilKnown = st.metricAvg, st.metricOK
	gctx, cancel := context.WithTimeout(ctx, 800*time.Millisecond)
	defer cancel()
	g, err := a.as.DescribeAutoScalingGroups(gctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{a.group}})
	if err != nil {
		return row, fmt.Errorf("describe %s: %w", a.group, err)
	}
	if len(g.AutoScalingGroups) != 1 {
		return row, fmt.Errorf("describe %s: %d groups", a.group, len(g.AutoScalingGroups))
	}
	row.Desired = int(aws.ToInt32(g.AutoScalingGroups[0].DesiredCapacity))
	if a.lastDesired != 0 && row.Desired != a.lastDesired {
		row.Change = fmt.Sprintf("%d->%d", a.lastDesired, row.Desired)
	}
	a.lastDesired = row.Desired
	return row, nil
}

// atMin reports whether the fleet is back at min with nothing draining.
func (s SideRow) atMin(min int) bool {
	return s.Desired == min && s.InService == min && s.Draining == 0
}

// firstLaunch returns the start of the group's first launch activity at or
// after from: the moment the cloud raised its capacity, read the same way
// for both fleets.
func firstLaunch(ctx context.Context, as *autoscaling.Client, group string, from time.Time) (time.Time, bool, error) {
	var first time.Time
	p := autoscaling.NewDescribeScalingActivitiesPaginator(as, &autoscaling.DescribeScalingActivitiesInput{AutoScalingGroupName: aws.String(group)})
	for pages := 0; p.HasMorePages() && pages < 20; pages++ {
		out, err := p.NextPage(ctx)
		if err != nil {
			return time.Time{}, false, fmt.Errorf("describe scaling activities of %s: %w", group, err)
		}
		for _, act := range out.Activities {
			st := aws.ToTime(act.StartTime)
			if !strings.HasPrefix(aws.ToString(act.Description), "Launching") || st.Before(from) {
				continue
			}
			if first.IsZero() || st.Before(first) {
				first = st
			}
		}
	}
	return first, !first.IsZero(), nil
}

// printCompareHeader is the live line's header with the AWS fleet's columns.
func printCompareHeader(w io.Writer) {
	fmt.Fprintf(w, "%4s │ %-47s │ %s\n", "", "Shoal ("+Fleet+")", "AWS target tracking ("+AWSFleet+")")
	fmt.Fprintf(w, "%4s │ %5s %9s %5s %3s %3s %3s %-10s │ %5s %9s %5s %3s %3s %3s %s\n",
		"t", "rps", "p99", "util", "des", "in", "drn", "decision", "rps", "p99", "util", "des", "in", "drn", "change")
}

func printCompareLine(w io.Writer, row Row) {
	a := row.AWS
	fmt.Fprintf(w, "%4d │ %5d %7.1fms %5s %3d %3d %3d %-10s │ %5d %7.1fms %5s %3d %3d %3d %s\n",
		row.T, row.RPS, row.P99ms, utilText(row.CPUAvg, row.CPUKnown), row.Desired, row.InService, row.Draining, row.Decision,
		a.RPS, a.P99ms, utilText(a.Util, a.UtilKnown), a.Desired, a.InService, a.Draining, a.Change)
}

func utilText(v float64, ok bool) string {
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.1f", v)
}
