//go:build multiprocess

package spot

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"

	"github.com/shoal-dev/shoal/deploy/internal/sandbox"
	"github.com/shoal-dev/shoal/deploy/testkit"
)

// instance is one element of `instances FLEET -o json`.
type instance struct {
	ID          string `json:"id"`
	State       string `json:"state"`
	Ready       bool   `json:"ready"`
	StateReason string `json:"state_reason"`
	AtRisk      bool   `json:"at_risk"`
}

// decision is one element of `decisions FLEET -o json`.
type decision struct {
	ID         uint64 `json:"id"`
	From       int    `json:"from"`
	To         int    `json:"to"`
	Status     string `json:"status"`
	Source     string `json:"source"`
	Actor      string `json:"actor"`
	Reason     string `json:"reason"`
	Error      string `json:"error"`
	ErrorClass string `json:"error_class"`
}

const group = "shoal-web"

var summary = regexp.MustCompile(`summary requests=(\d+) ok=\d+ errors=(\d+)`)

type notYet string

func (e notYet) Error() string { return string(e) }

func post(ctx context.Context, sb *sandbox.Sandbox, path string, q url.Values) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sb.CloudURL+path+"?"+q.Encode(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s: %s", path, resp.Status, body)
	}
	return nil
}

// TestInterruptionDrainsReplacesOnceAndTerminates: under steady load at 3
// instances, one instance gets a Spot interruption (termination 25 s after
// the notice; --spot-drain-margin 5s). The leader drains it at once, asks
// for exactly one replacement (a SPOT decision naming it), terminates it
// itself with the desired capacity decremented before EC2 would, and no
// request fails. With Capacity Rebalancing turned on, a second interruption
// is replaced by the group alone (one launch, no SPOT decision) and explain
// says so. Then an injected InsufficientInstanceCapacity shows in
// `decisions` with its code and class.
func TestInterruptionDrainsReplacesOnceAndTerminates(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 85*time.Second)
	defer cancel()
	opts := sandbox.DefaultOptions()
	opts.BinDir = testkit.BinDir(t)
	opts.BootDelay, opts.EvalInterval, opts.TerminateGrace = 500*time.Millisecond, 500*time.Millisecond, time.Second
	opts.CoordinatorArgs = []string{"--spot-drain-margin", "5s"}
	sb, err := sandbox.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := sb.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	if _, err := sb.RunGolden(ctx, 50); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Bootstrap(ctx, sandbox.Bootstrap{Min: 3, Max: 6}); err != nil {
		t.Fatal(err)
	}
	in, err := sb.WaitInService(ctx, "web", 3, 40*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.StartLB(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	// 60 req/s on 3 × 50: the policy holds at 3 (min) throughout.
	var loadOut bytes.Buffer
	load, err := sb.Spawn("load", "shoal-lb", []string{"loadtest", "--target", sb.LBURL + "/", "--rate", "60",
		"--duration", "25s", "--connections", "8", "--streams", "1", "--timeout", "5s", "--quiet"}, &loadOut)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := sb.AWSConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	as := autoscaling.NewFromConfig(cfg)
	before := map[string]bool{}
	for _, a := range activities(ctx, t, as) {
		before[aws.ToString(a.ActivityId)] = true
	}
	victim := in[1].ID
	notice := time.Now()
	if err := post(ctx, sb, "/_localcloud/interrupt", url.Values{"instance": {victim}, "in": {"25s"}}); err != nil {
		t.Fatal(err)
	}

	var drainSeen time.Duration
	err = sandbox.Poll(ctx, 10*time.Second, "the victim draining for the interruption", func(ctx context.Context) error {
		var ins []instance
		if err := sb.CLIJSON(ctx, &ins, "instances", "web"); err != nil {
			return err
		}
		for _, i := range ins {
			if i.ID == victim && i.State == "draining" && strings.HasPrefix(i.StateReason, "spot interruption at ") {
				drainSeen = time.Since(notice)
				return nil
			}
		}
		return notYet(fmt.Sprintf("instances: %+v", ins))
	})
	if err != nil {
		t.Fatal(err)
	}

	var replacedIn time.Duration
	err = sandbox.Poll(ctx, 30*time.Second, "replacement in service, victim gone", func(ctx context.Context) error {
		var ins []instance
		if err := sb.CLIJSON(ctx, &ins, "instances", "web"); err != nil {
			return err
		}
		ready := 0
		for _, i := range ins {
			if i.ID == victim && i.State != "terminated" {
				return notYet("victim still " + i.State)
			}
			if i.State == "in_service" && i.Ready {
				ready++
			}
		}
		if ready != 3 {
			return notYet(fmt.Sprintf("%d in service: %+v", ready, ins))
		}
		replacedIn = time.Since(notice)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("notice → drain seen by the CLI %v; notice → victim terminated and replacement in service %v",
		drainSeen.Round(10*time.Millisecond), replacedIn.Round(100*time.Millisecond))
	if replacedIn >= 20*time.Second {
		t.Errorf("replacement took %v: not within the notice less the margin (20 s)", replacedIn)
	}

	var ds []decision
	if err := sb.CLIJSON(ctx, &ds, "decisions", "web"); err != nil {
		t.Fatal(err)
	}
	var spot []decision
	for _, d := range ds {
		if d.Source == "spot" {
			spot = append(spot, d)
		}
	}
	if len(spot) != 1 || spot[0].Status != "applied" || !strings.Contains(spot[0].Reason, victim) || spot[0].Actor == "" {
		t.Fatalf("spot decisions = %+v, want one applied naming %s with an actor", spot, victim)
	}

	// The group: back to its pre-notice capacity, one launch and one
	// termination (the victim's) since the notice.
	g, err := as.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{group}})
	if err != nil || len(g.AutoScalingGroups) != 1 {
		t.Fatalf("describe group: %v %+v", err, g)
	}
	if d := aws.ToInt32(g.AutoScalingGroups[0].DesiredCapacity); d != 3 {
		t.Fatalf("desired = %d after the interruption, want 3 (its value before the notice)", d)
	}
	launches, terms := 0, []string{}
	for _, a := range activities(ctx, t, as) {
		if before[aws.ToString(a.ActivityId)] {
			continue
		}
		desc := aws.ToString(a.Description)
		switch {
		case strings.HasPrefix(desc, "Launching a new EC2 instance"):
			launches++
		case strings.HasPrefix(desc, "Terminating EC2 instance: "):
			terms = append(terms, strings.TrimPrefix(desc, "Terminating EC2 instance: "))
		}
	}
	if launches != 1 || len(terms) != 1 || terms[0] != victim {
		t.Fatalf("since the notice: %d launches, terminations %v; want exactly 1 launch and only %s terminated", launches, terms, victim)
	}

	if err := load.Wait(ctx); err != nil {
		t.Fatalf("load: %v\n%s", err, loadOut.String())
	}
	m := summary.FindStringSubmatch(loadOut.String())
	if m == nil {
		t.Fatalf("no loadtest summary:\n%s", loadOut.String())
	}
	n, _ := strconv.Atoi(m[1])
	fails, _ := strconv.Atoi(m[2])
	t.Logf("load through the interruption: %d requests, %d failed", n, fails)
	if fails != 0 || n < 1000 {
		t.Fatalf("%d of %d requests failed through the interruption; want 0 of at least 1000", fails, n)
	}

	// Capacity Rebalancing on: the group launches the replacement itself,
	// so Shoal launches none, and explain says which path ran.
	if _, err := as.UpdateAutoScalingGroup(ctx, &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String(group), CapacityRebalance: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	ins, err := sb.WaitInService(ctx, "web", 3, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range activities(ctx, t, as) {
		before[aws.ToString(a.ActivityId)] = true
	}
	second := ins[0].ID
	if err := post(ctx, sb, "/_localcloud/interrupt", url.Values{"instance": {second}, "in": {"25s"}}); err != nil {
		t.Fatal(err)
	}
	err = sandbox.Poll(ctx, 20*time.Second, "explain naming the Capacity Rebalancing path", func(ctx context.Context) error {
		var ex struct {
			Details []string `json:"details"`
		}
		if err := sb.CLIJSON(ctx, &ex, "explain", "web"); err != nil {
			return err
		}
		for _, d := range ex.Details {
			if strings.Contains(d, second) && strings.Contains(d, "Capacity Rebalancing on") {
				return nil
			}
		}
		return notYet(strings.Join(ex.Details, "; "))
	})
	if err != nil {
		t.Fatal(err)
	}
	err = sandbox.Poll(ctx, 30*time.Second, "the rebalanced instance replaced once", func(ctx context.Context) error {
		var ins []instance
		if err := sb.CLIJSON(ctx, &ins, "instances", "web"); err != nil {
			return err
		}
		ready := 0
		for _, i := range ins {
			if i.ID == second && i.State != "terminated" {
				return notYet("second victim still " + i.State)
			}
			if i.State == "in_service" && i.Ready {
				ready++
			}
		}
		if ready != 3 {
			return notYet(fmt.Sprintf("%d in service", ready))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	launches = 0
	for _, a := range activities(ctx, t, as) {
		if !before[aws.ToString(a.ActivityId)] && strings.HasPrefix(aws.ToString(a.Description), "Launching a new EC2 instance") {
			launches++
		}
	}
	var after []decision
	if err := sb.CLIJSON(ctx, &after, "decisions", "web"); err != nil {
		t.Fatal(err)
	}
	for _, d := range after {
		if d.Source == "spot" && strings.Contains(d.Reason, second) {
			t.Fatalf("Shoal launched a replacement for %s although the group has Capacity Rebalancing: %+v", second, d)
		}
	}
	if launches != 1 {
		t.Fatalf("with Capacity Rebalancing: %d launches since the notice, want exactly 1 (the group's)", launches)
	}

	// A failed launch: the next launch into the group fails with
	// InsufficientInstanceCapacity, and `decisions` says so.
	if err := post(ctx, sb, "/_localcloud/faults/launch", url.Values{"group": {group}, "code": {"InsufficientInstanceCapacity"}, "count": {"1"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.CLI(ctx, "scale", "web", "--desired", "4", "--reason", "e2e: launch into a failing group"); err != nil {
		t.Fatal(err)
	}
	err = sandbox.Poll(ctx, 20*time.Second, "the failed launch in decisions", func(ctx context.Context) error {
		var ds []decision
		if err := sb.CLIJSON(ctx, &ds, "decisions", "web"); err != nil {
			return err
		}
		for _, d := range ds {
			if d.Status == "failed" && strings.Contains(d.Reason, "InsufficientInstanceCapacity") && d.ErrorClass == "retryable" &&
				strings.Contains(d.Error, "Could not launch On-Demand Instances.") {
				return nil
			}
		}
		b, _ := json.Marshal(ds)
		return notYet(string(b))
	})
	if err != nil {
		t.Fatal(err)
	}
}

func activities(ctx context.Context, t *testing.T, as *autoscaling.Client) []astypes.Activity {
	t.Helper()
	out, err := as.DescribeScalingActivities(ctx, &autoscaling.DescribeScalingActivitiesInput{AutoScalingGroupName: aws.String(group), MaxRecords: aws.Int32(100)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Activities
}
