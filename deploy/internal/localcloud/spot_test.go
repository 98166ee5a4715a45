package localcloud

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
)

// imdsGet reads one metadata path the IMDSv2 way; it returns the status
// and the body.
func imdsGet(t *testing.T, endpoint, path string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, endpoint+"latest/api/token", nil)
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "60")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	req, _ = http.NewRequest(http.MethodGet, endpoint+strings.TrimPrefix(path, "/"), nil)
	req.Header.Set("X-aws-ec2-metadata-token", string(tok))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (tc *testCloud) imdsEndpoint(t *testing.T, id string) string {
	t.Helper()
	for _, in := range tc.instances(t) {
		if in.ID == id {
			return in.IMDSEndpoint
		}
	}
	t.Fatalf("instance %s not listed", id)
	return ""
}

func (tc *testCloud) events(t *testing.T) []Event {
	t.Helper()
	var out []Event
	sc := bufio.NewScanner(bytes.NewReader(tc.hook(t, http.MethodGet, "/_localcloud/events")))
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("event line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

func (tc *testCloud) advance(t *testing.T, d time.Duration) {
	t.Helper()
	tc.hook(t, http.MethodPost, "/_localcloud/clock?advance="+d.String())
}

func (tc *testCloud) interrupt(t *testing.T, query string) Interruption {
	t.Helper()
	var out Interruption
	if err := json.Unmarshal(tc.hook(t, http.MethodPost, "/_localcloud/interrupt?"+query), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func (tc *testCloud) activities(t *testing.T, group string) []astypes.Activity {
	t.Helper()
	out, err := tc.asg.DescribeScalingActivities(ctxT(t), &autoscaling.DescribeScalingActivitiesInput{AutoScalingGroupName: aws.String(group)})
	if err != nil {
		t.Fatal(err)
	}
	return out.Activities
}

// launches counts the group's successful launch activities.
func (tc *testCloud) launches(t *testing.T, group string) int {
	n := 0
	for _, a := range tc.activities(t, group) {
		if strings.HasPrefix(aws.ToString(a.Description), "Launching a new EC2 instance") && a.StatusCode != astypes.ScalingActivityStatusCodeFailed {
			n++
		}
	}
	return n
}

func TestSpotInterruption(t *testing.T) {
	tc := startCloud(t, nil)
	tc.template(t, "web", BaseImageID, sleepScript)
	tc.group(t, "g", "web", 1, 3, 2, nil)
	insts := tc.waitInService(t, "g", 2)
	victim, other := aws.ToString(insts[0].InstanceId), aws.ToString(insts[1].InstanceId)
	ep := tc.imdsEndpoint(t, victim)
	for _, p := range []string{"/latest/meta-data/spot/instance-action", "/latest/meta-data/events/recommendations/rebalance"} {
		if code, body := imdsGet(t, ep, p); code != http.StatusNotFound {
			t.Fatalf("%s before any notice: %d %q, want 404", p, code, body)
		}
	}
	if _, body := imdsGet(t, ep, "/latest/meta-data/autoscaling/target-lifecycle-state"); body != "InService" {
		t.Fatalf("target lifecycle state %q, want InService", body)
	}

	t0 := tc.now(t)
	got := tc.interrupt(t, "instance="+victim+"&in=120s&rebalance-first=30s")
	rebalanceAt, _ := time.Parse(time.RFC3339, got.RebalanceTime)
	noticeAt, _ := time.Parse(time.RFC3339, got.NoticeTime)
	endAt, _ := time.Parse(time.RFC3339, got.TerminationTime)
	if got.Action != "terminate" || rebalanceAt.Sub(t0.Truncate(time.Second)).Abs() > time.Second ||
		noticeAt.Sub(rebalanceAt) != 30*time.Second || endAt.Sub(noticeAt) != 120*time.Second {
		t.Fatalf("interruption %+v at %s: want a rebalance now, the notice 30s later, termination 120s after it", got, t0)
	}
	if code, body := imdsGet(t, ep, "/latest/meta-data/events/recommendations/rebalance"); code != 200 || body != fmt.Sprintf(`{"noticeTime": %q}`, got.RebalanceTime) {
		t.Fatalf("rebalance recommendation: %d %q", code, body)
	}
	if code, _ := imdsGet(t, ep, "/latest/meta-data/spot/instance-action"); code != http.StatusNotFound {
		t.Fatalf("instance-action before the notice time: %d, want 404", code)
	}
	evs := tc.events(t)
	if len(evs) != 1 || evs[0].DetailType != "EC2 Instance Rebalance Recommendation" || evs[0].Source != "aws.ec2" ||
		evs[0].Detail["instance-id"] != victim || evs[0].Resources[0] != "arn:aws:ec2:us-east-1:123456789012:instance/"+victim {
		t.Fatalf("events after the recommendation: %+v", evs)
	}

	tc.advance(t, 30*time.Second)
	want := fmt.Sprintf(`{"action": "terminate", "time": %q}`, got.TerminationTime)
	if code, body := imdsGet(t, ep, "/latest/meta-data/spot/instance-action"); code != 200 || body != want {
		t.Fatalf("instance-action: %d %q, want %q", code, body, want)
	}
	evs = tc.events(t)
	if len(evs) != 2 || evs[1].DetailType != "EC2 Spot Instance Interruption Warning" || evs[1].Detail["instance-action"] != "terminate" || evs[1].Time != got.NoticeTime {
		t.Fatalf("events after the notice: %+v", evs)
	}
	tc.advance(t, 119*time.Second)
	if st := tc.ec2State(t, victim); st != "running" {
		t.Fatalf("a second before the notice time the instance is %s, want running", st)
	}
	tc.advance(t, time.Second)
	tc.eventually(t, 10*time.Second, func() error {
		out, err := tc.ec2.DescribeInstances(ctxT(t), &ec2.DescribeInstancesInput{InstanceIds: []string{victim}})
		if err != nil {
			return err
		}
		in := out.Reservations[0].Instances[0]
		if in.State.Name != "terminated" || in.StateReason == nil || aws.ToString(in.StateReason.Code) != "Server.SpotInstanceTermination" {
			return fmt.Errorf("state %s, reason %+v", in.State.Name, in.StateReason)
		}
		return nil
	})
	found := false
	for _, a := range tc.activities(t, "g") {
		found = found || (aws.ToString(a.Description) == "Terminating EC2 instance: "+victim && strings.Contains(aws.ToString(a.Cause), "terminated or stopped") && a.StatusCode == astypes.ScalingActivityStatusCodeSuccessful)
	}
	if !found {
		t.Fatalf("no termination activity for %s", victim)
	}
	// The group replaces it, as after any loss; the other instance is untouched.
	after := tc.waitInService(t, "g", 2)
	ids := []string{aws.ToString(after[0].InstanceId), aws.ToString(after[1].InstanceId)}
	if !contains(ids, other) || contains(ids, victim) {
		t.Fatalf("after the interruption the group has %v; want %s and a replacement", ids, other)
	}
	code, _ := http.Post(tc.srv.URL()+"/_localcloud/interrupt?instance="+victim, "", nil)
	if code.Body.Close(); code.StatusCode != http.StatusConflict {
		t.Fatalf("interrupting a terminated instance: %d, want 409", code.StatusCode)
	}
}

func (tc *testCloud) ec2State(t *testing.T, id string) string {
	t.Helper()
	out, err := tc.ec2.DescribeInstances(ctxT(t), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		t.Fatal(err)
	}
	return string(out.Reservations[0].Instances[0].State.Name)
}

func TestInterruptRejectsBadInput(t *testing.T) {
	tc := startCloud(t, nil)
	tc.template(t, "web", BaseImageID, sleepScript)
	tc.group(t, "g", "web", 1, 1, 1, nil)
	id := aws.ToString(tc.waitInService(t, "g", 1)[0].InstanceId)
	cases := []struct {
		name, query string
		status      int
		want        string
	}{
		{"no instance", "in=120s", 400, "instance is required"},
		{"unknown instance", "instance=i-0123456789abcdef0", 404, "does not exist"},
		{"bad duration", "instance=" + id + "&in=soon", 400, "must be a duration"},
		{"notice too short", "instance=" + id + "&in=10ms", 400, "must be between"},
		{"negative rebalance-first", "instance=" + id + "&rebalance-first=-1s", 400, "rebalance-first"},
		{"bad rebalance-only", "instance=" + id + "&rebalance-only=maybe", 400, "rebalance-only"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, err := http.Post(tc.srv.URL()+"/_localcloud/interrupt?"+c.query, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.status || !strings.Contains(string(b), c.want) {
				t.Fatalf("%d %s, want %d mentioning %q", resp.StatusCode, b, c.status, c.want)
			}
		})
	}
	tc.interrupt(t, "instance="+id+"&rebalance-only=true")
	resp, _ := http.Post(tc.srv.URL()+"/_localcloud/interrupt?instance="+id+"&rebalance-only=true", "", nil)
	if resp.Body.Close(); resp.StatusCode != http.StatusConflict {
		t.Fatalf("second rebalance recommendation: %d, want 409", resp.StatusCode)
	}
}

// TestRebalanceOnlyWithoutCapacityRebalance: a recommendation on its own
// shows in metadata and events and changes nothing else.
func TestRebalanceOnlyWithoutCapacityRebalance(t *testing.T) {
	tc := startCloud(t, nil)
	tc.template(t, "web", BaseImageID, sleepScript)
	tc.group(t, "g", "web", 1, 3, 2, nil)
	id := aws.ToString(tc.waitInService(t, "g", 2)[0].InstanceId)
	got := tc.interrupt(t, "instance="+id+"&rebalance-only=true")
	if got.NoticeTime != "" || got.RebalanceTime == "" {
		t.Fatalf("rebalance-only scheduled %+v", got)
	}
	ep := tc.imdsEndpoint(t, id)
	if code, _ := imdsGet(t, ep, "/latest/meta-data/events/recommendations/rebalance"); code != 200 {
		t.Fatalf("rebalance recommendation: %d, want 200", code)
	}
	tc.advance(t, 10*time.Minute)
	if code, _ := imdsGet(t, ep, "/latest/meta-data/spot/instance-action"); code != http.StatusNotFound {
		t.Fatalf("instance-action after a recommendation only: %d, want 404", code)
	}
	if evs := tc.events(t); len(evs) != 1 || evs[0].DetailType != detailRebalance {
		t.Fatalf("events: %+v", evs)
	}
	tc.waitInService(t, "g", 2)
	if n := tc.launches(t, "g"); n != 2 {
		t.Fatalf("%d launches, want the 2 initial ones: without Capacity Rebalancing nothing replaces the instance", n)
	}
}

// TestCapacityRebalanceReplacesOnce: with CapacityRebalance on, an
// interruption (which brings a recommendation) makes the group launch
// exactly one replacement, even at MaxSize, and terminate the at-risk
// instance once the replacement is in service, before the notice time.
func TestCapacityRebalanceReplacesOnce(t *testing.T) {
	tc := startCloud(t, nil)
	tc.template(t, "web", BaseImageID, sleepScript)
	tc.group(t, "g", "web", 2, 2, 2, func(in *autoscaling.CreateAutoScalingGroupInput) { in.CapacityRebalance = aws.Bool(true) })
	if g := tc.describeGroup(t, "g"); !aws.ToBool(g.CapacityRebalance) {
		t.Fatal("DescribeAutoScalingGroups: CapacityRebalance false after creating the group with it")
	}
	for _, v := range []bool{false, true} {
		if _, err := tc.asg.UpdateAutoScalingGroup(ctxT(t), &autoscaling.UpdateAutoScalingGroupInput{AutoScalingGroupName: aws.String("g"), CapacityRebalance: aws.Bool(v)}); err != nil {
			t.Fatal(err)
		}
		if g := tc.describeGroup(t, "g"); aws.ToBool(g.CapacityRebalance) != v {
			t.Fatalf("CapacityRebalance %v after updating it to %v", aws.ToBool(g.CapacityRebalance), v)
		}
	}
	insts := tc.waitInService(t, "g", 2)
	victim, other := aws.ToString(insts[0].InstanceId), aws.ToString(insts[1].InstanceId)
	got := tc.interrupt(t, "instance="+victim+"&in=120s")
	if got.RebalanceTime != got.NoticeTime {
		t.Fatalf("without rebalance-first the recommendation comes with the notice: %+v", got)
	}
	var replacement string
	tc.eventually(t, 10*time.Second, func() error {
		replacement = ""
		for _, in := range tc.describeGroup(t, "g").Instances {
			if id := aws.ToString(in.InstanceId); id != victim && id != other {
				replacement = id
			}
		}
		if replacement == "" {
			return fmt.Errorf("no replacement yet")
		}
		return nil
	})
	tc.eventually(t, 10*time.Second, func() error {
		if st := tc.ec2State(t, victim); st != "terminated" {
			return fmt.Errorf("at-risk instance is %s", st)
		}
		return nil
	})
	if now := tc.now(t); !now.Before(mustTime(t, got.TerminationTime)) {
		t.Fatalf("the at-risk instance went at %s, not before the notice time %s", now, got.TerminationTime)
	}
	for _, a := range tc.activities(t, "g") {
		d := aws.ToString(a.Description)
		if d == "Launching a new EC2 instance: "+replacement && !strings.Contains(aws.ToString(a.Cause), "rebalance recommendation for instance "+victim) {
			t.Fatalf("replacement launch cause %q", aws.ToString(a.Cause))
		}
		if d == "Terminating EC2 instance: "+victim && !strings.Contains(aws.ToString(a.Cause), "its replacement "+replacement+" is in service") {
			t.Fatalf("at-risk termination cause %q", aws.ToString(a.Cause))
		}
	}
	// The notice time passes; nothing else is launched or terminated.
	tc.advance(t, 10*time.Minute)
	after := tc.waitInService(t, "g", 2)
	ids := []string{aws.ToString(after[0].InstanceId), aws.ToString(after[1].InstanceId)}
	if !contains(ids, other) || !contains(ids, replacement) {
		t.Fatalf("group has %v, want %s and %s", ids, other, replacement)
	}
	if n := tc.launches(t, "g"); n != 3 {
		t.Fatalf("%d launches, want 3: the 2 initial ones and exactly one replacement", n)
	}
	if g := tc.describeGroup(t, "g"); aws.ToInt32(g.DesiredCapacity) != 2 {
		t.Fatalf("desired %d, want 2", aws.ToInt32(g.DesiredCapacity))
	}
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestLaunchFailuresCounted: the next N launches fail with the named error,
// then launches succeed again.
func TestLaunchFailuresCounted(t *testing.T) {
	tc := startCloud(t, func(c *Config) { c.LaunchRetry = 50 * time.Millisecond })
	tc.template(t, "web", BaseImageID, sleepScript)
	tc.group(t, "g", "web", 0, 2, 0, nil)
	tc.hook(t, http.MethodPost, "/_localcloud/faults/launch?group=g&code=InsufficientInstanceCapacity&count=2")
	if _, err := tc.asg.SetDesiredCapacity(ctxT(t), &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("g"), DesiredCapacity: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	tc.waitInService(t, "g", 1)
	failed := 0
	for _, a := range tc.activities(t, "g") {
		if a.StatusCode != astypes.ScalingActivityStatusCodeFailed {
			continue
		}
		failed++
		msg := aws.ToString(a.StatusMessage)
		if !strings.HasPrefix(msg, "Could not launch On-Demand Instances. InsufficientInstanceCapacity - ") || !strings.HasSuffix(msg, "Launching EC2 instance failed.") ||
			!strings.Contains(aws.ToString(a.Description), "Status Reason: Could not launch") {
			t.Fatalf("failed activity: description %q, status message %q", aws.ToString(a.Description), msg)
		}
	}
	if failed != 2 {
		t.Fatalf("%d failed activities, want exactly 2", failed)
	}
	resp, _ := http.Post(tc.srv.URL()+"/_localcloud/faults/launch?group=g&count=0", "", nil)
	if resp.Body.Close(); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("count=0: %d, want 400", resp.StatusCode)
	}
}

// TestTargetLifecycleStateFollowsTermination: a group-initiated termination
// shows as Terminated while the terminating hook holds the instance.
func TestTargetLifecycleStateFollowsTermination(t *testing.T) {
	tc := startCloud(t, nil)
	tc.template(t, "web", BaseImageID, sleepScript)
	tc.group(t, "g", "web", 0, 2, 1, func(in *autoscaling.CreateAutoScalingGroupInput) {
		in.LifecycleHookSpecificationList = []astypes.LifecycleHookSpecification{{LifecycleHookName: aws.String("drain"),
			LifecycleTransition: aws.String(transitionTerminating), HeartbeatTimeout: aws.Int32(60)}}
	})
	id := aws.ToString(tc.waitInService(t, "g", 1)[0].InstanceId)
	ep := tc.imdsEndpoint(t, id)
	if _, body := imdsGet(t, ep, "/latest/meta-data/autoscaling/target-lifecycle-state"); body != "InService" {
		t.Fatalf("target lifecycle state %q, want InService", body)
	}
	if _, err := tc.asg.SetDesiredCapacity(ctxT(t), &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("g"), DesiredCapacity: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}
	tc.eventually(t, 10*time.Second, func() error {
		if _, body := imdsGet(t, ep, "/latest/meta-data/autoscaling/target-lifecycle-state"); body != "Terminated" {
			return fmt.Errorf("target lifecycle state %q", body)
		}
		return nil
	})
}

// TestEventsFilterAndCursor: detail-type filters, after= reads on from an
// event, and an unknown cursor is an error rather than a silent replay.
func TestEventsFilterAndCursor(t *testing.T) {
	tc := startCloud(t, nil)
	tc.template(t, "web", BaseImageID, sleepScript)
	tc.group(t, "g", "web", 1, 1, 1, nil)
	id := aws.ToString(tc.waitInService(t, "g", 1)[0].InstanceId)
	tc.interrupt(t, "instance="+id+"&in=60s")
	all := tc.events(t)
	if len(all) != 2 || all[0].DetailType != detailRebalance || all[1].DetailType != detailSpotInterruption || all[0].Time != all[1].Time {
		t.Fatalf("events %+v: want the recommendation and the notice, at the same time", all)
	}
	b := tc.hook(t, http.MethodGet, "/_localcloud/events?detail-type=EC2+Spot+Instance+Interruption+Warning")
	if n := strings.Count(string(b), "\n"); n != 1 || !strings.Contains(string(b), `"instance-action":"terminate"`) {
		t.Fatalf("filtered events %q", b)
	}
	b = tc.hook(t, http.MethodGet, "/_localcloud/events?after="+all[0].ID)
	if n := strings.Count(string(b), "\n"); n != 1 || !strings.Contains(string(b), all[1].ID) {
		t.Fatalf("events after the first: %q", b)
	}
	resp, err := http.Get(tc.srv.URL() + "/_localcloud/events?after=nope")
	if err != nil {
		t.Fatal(err)
	}
	if resp.Body.Close(); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown cursor: %d, want 404", resp.StatusCode)
	}
}

// TestEventLogIsBounded: the log keeps the newest maxEvents and counts the
// ones it dropped.
func TestEventLogIsBounded(t *testing.T) {
	c, clk, _ := newStateCloud(t, nil)
	c.mu.Lock()
	for i := 0; i < maxEvents+5; i++ {
		c.emitLocked(detailRebalance, fmt.Sprintf("i-%017d", i), clk.t, map[string]string{"instance-id": fmt.Sprintf("i-%017d", i)})
	}
	c.mu.Unlock()
	evs, dropped, ok := c.Events("", "")
	if !ok || len(evs) != maxEvents || dropped != 5 || evs[0].Detail["instance-id"] != fmt.Sprintf("i-%017d", 5) {
		t.Fatalf("%d events (first %v), %d dropped; want %d, the oldest 5 dropped", len(evs), evs[0].Detail, dropped, maxEvents)
	}
}
