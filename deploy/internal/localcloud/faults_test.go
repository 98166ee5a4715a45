package localcloud

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// setFault posts one rule of the JSON fault API.
func (tc *testCloud) setFault(t *testing.T, f APIFault) {
	t.Helper()
	b, _ := json.Marshal(f)
	resp, err := http.Post(tc.srv.URL()+"/_localcloud/faults/api", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&e)
		t.Fatalf("set fault %+v: %d %s", f, resp.StatusCode, e["error"])
	}
}

func (tc *testCloud) audit(t *testing.T, since int64) []AuditRecord {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("%s/_localcloud/audit?since=%d", tc.srv.URL(), since))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get(auditDroppedHeader) != "0" {
		t.Fatalf("audit: %d, dropped %q", resp.StatusCode, resp.Header.Get(auditDroppedHeader))
	}
	var out []AuditRecord
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var r AuditRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

func withTerm(term string) func(*autoscaling.Options) {
	return func(o *autoscaling.Options) {
		o.RetryMaxAttempts = 1
		o.APIOptions = append(o.APIOptions, smithyhttp.SetHeaderValue(TermHeader, term))
	}
}

func TestAPIFaultKindsAnswerInEachServicesShape(t *testing.T) {
	tc := startCloud(t, nil)
	ctx := ctxT(t)
	noRetryASG := func(o *autoscaling.Options) { o.RetryMaxAttempts = 1 }
	noRetryEC2 := func(o *ec2.Options) { o.RetryMaxAttempts = 1 }
	noRetryCW := func(o *cloudwatch.Options) { o.RetryMaxAttempts = 1 }
	describeASG := func() error {
		_, err := tc.asg.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{}, noRetryASG)
		return err
	}
	describeEC2 := func() error {
		_, err := tc.ec2.DescribeInstances(ctx, &ec2.DescribeInstancesInput{}, noRetryEC2)
		return err
	}
	listCW := func() error {
		_, err := tc.cw.ListMetrics(ctx, &cloudwatch.ListMetricsInput{}, noRetryCW)
		return err
	}
	cases := []struct {
		name    string
		fault   APIFault
		call    func() error
		code    string
		unaffec func() error // a call the rule must not hit
	}{
		{"autoscaling throttle", APIFault{Op: "*", Service: "autoscaling", Kind: kindThrottle, Count: 1}, describeASG, "Throttling", describeEC2},
		{"ec2 throttle", APIFault{Op: "DescribeInstances", Service: "*", Kind: kindThrottle, Count: 1}, describeEC2, "RequestLimitExceeded", describeASG},
		{"cloudwatch throttle", APIFault{Op: "ListMetrics", Kind: kindThrottle, Count: 1}, listCW, "Throttling", describeASG},
		{"autoscaling 5xx", APIFault{Op: "DescribeAutoScalingGroups", Service: "autoscaling", Kind: kind5xx, Count: 1}, describeASG, "InternalFailure", listCW},
		{"ec2 5xx", APIFault{Op: "*", Service: "ec2", Kind: kind5xx, Count: 1}, describeEC2, "InternalError", describeASG},
		{"cloudwatch 5xx", APIFault{Op: "*", Service: "monitoring", Kind: kind5xx, Count: 1}, listCW, "InternalFailure", describeEC2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tc.setFault(t, c.fault)
			if err := c.unaffec(); err != nil {
				t.Fatalf("a call outside the rule failed: %v", err)
			}
			wantCode(t, c.call(), c.code)
			if err := c.call(); err != nil {
				t.Fatalf("count 1 hit a second call: %v", err)
			}
		})
	}

	t.Run("count 0 lasts until cleared", func(t *testing.T) {
		tc.setFault(t, APIFault{Op: "*", Kind: kind5xx})
		for i := 0; i < 3; i++ {
			wantCode(t, describeASG(), "InternalFailure")
		}
		tc.hook(t, http.MethodDelete, "/_localcloud/faults/api")
		if err := describeASG(); err != nil {
			t.Fatalf("after DELETE: %v", err)
		}
	})

	t.Run("latency delays the call", func(t *testing.T) {
		tc.setFault(t, APIFault{Op: "DescribeInstances", Kind: kindLatency, LatencyMS: 300, Count: 1})
		start := time.Now()
		if err := describeEC2(); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d < 300*time.Millisecond {
			t.Fatalf("call took %s, want at least the injected 300ms", d)
		}
	})
}

func TestAPIFaultHookRefusesBadRules(t *testing.T) {
	cases := []struct {
		name string
		f    APIFault
		want string
	}{
		{"no op", APIFault{Kind: kind5xx}, "op is required"},
		{"unknown kind", APIFault{Op: "*", Kind: "teapot"}, `kind "teapot"`},
		{"unknown service", APIFault{Op: "*", Service: "s3", Kind: kind5xx}, `service "s3"`},
		{"negative count", APIFault{Op: "*", Kind: kind5xx, Count: -1}, "count (-1)"},
		{"latency without delay", APIFault{Op: "*", Kind: kindLatency}, "latency_ms (0)"},
		{"latency too long", APIFault{Op: "*", Kind: kindLatency, LatencyMS: 3_600_000}, "latency_ms (3600000)"},
		{"delay on a throttle", APIFault{Op: "*", Kind: kindThrottle, LatencyMS: 5}, "only for kind latency"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.f.Validate()
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate() = %v, want an error containing %q", err, c.want)
			}
		})
	}
	var f faults = newFaults()
	for i := 0; i < maxAPIFaults; i++ {
		if err := f.addAPIFault(APIFault{Op: "*", Kind: kind5xx}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.addAPIFault(APIFault{Op: "*", Kind: kind5xx}); err == nil {
		t.Fatalf("rule %d was accepted past the bound", maxAPIFaults+1)
	}
}

func TestDropResponseAppliesTheCallAndAuditsIt(t *testing.T) {
	tc := startCloud(t, nil)
	ctx := ctxT(t)
	tc.template(t, "tmpl", BaseImageID, sleepScript)
	tc.group(t, "g", "tmpl", 0, 4, 0, nil)
	tc.setFault(t, APIFault{Op: "SetDesiredCapacity", Service: "autoscaling", Kind: kindDrop, Count: 1})

	_, err := tc.asg.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("g"), DesiredCapacity: aws.Int32(2)}, withTerm("7"))
	if err == nil {
		t.Fatal("the dropped response reached the client")
	}
	if got := aws.ToInt32(tc.describeGroup(t, "g").DesiredCapacity); got != 2 {
		t.Fatalf("desired %d after a dropped response, want 2: the call must be applied", got)
	}
	// The next call is answered again.
	if _, err := tc.asg.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("g"), DesiredCapacity: aws.Int32(1)}, withTerm("8")); err != nil {
		t.Fatal(err)
	}

	var sets []AuditRecord
	for _, r := range tc.audit(t, 0) {
		if r.Op == "SetDesiredCapacity" {
			sets = append(sets, r)
		}
	}
	if len(sets) != 2 {
		t.Fatalf("audit has %d SetDesiredCapacity records, want 2: %+v", len(sets), sets)
	}
	d, u := sets[0], sets[1]
	if d.Fault != kindDrop || d.Status != http.StatusOK || d.Term != 7 || aws.ToInt(d.Desired) != 2 || d.Group != "g" {
		t.Fatalf("dropped call's record %+v", d)
	}
	if u.Fault != "" || u.Status != http.StatusOK || u.Term != 8 || aws.ToInt(u.Desired) != 1 || u.Seq <= d.Seq {
		t.Fatalf("answered call's record %+v (after %+v)", u, d)
	}
}

func TestAuditRecordsMutatingCallsWithCallerAndTerm(t *testing.T) {
	tc := startCloud(t, nil)
	ctx := ctxT(t)
	tc.template(t, "tmpl", BaseImageID, sleepScript)
	tc.group(t, "g", "tmpl", 0, 4, 1, nil)
	ids := tc.waitInService(t, "g", 1)
	before := tc.audit(t, 0)
	last := before[len(before)-1].Seq

	tc.setFault(t, APIFault{Op: "TerminateInstanceInAutoScalingGroup", Kind: kindThrottle, Count: 1})
	in := &autoscaling.TerminateInstanceInAutoScalingGroupInput{InstanceId: ids[0].InstanceId, ShouldDecrementDesiredCapacity: aws.Bool(true)}
	_, err := tc.asg.TerminateInstanceInAutoScalingGroup(ctx, in, withTerm("12"))
	wantCode(t, err, "Throttling")
	if _, err := tc.asg.TerminateInstanceInAutoScalingGroup(ctx, in, withTerm("12")); err != nil {
		t.Fatal(err)
	}
	// Reads are not audited; a call without the header has term 0.
	tc.describeGroup(t, "g")
	if _, err := tc.asg.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: aws.String("g"), DesiredCapacity: aws.Int32(0)}); err != nil {
		t.Fatal(err)
	}

	recs := tc.audit(t, last)
	if len(recs) != 3 {
		t.Fatalf("want 3 records since seq %d, got %+v", last, recs)
	}
	for i, r := range recs {
		if r.Caller != "AKIDLOCALCLOUDTEST" || r.Service != "autoscaling" || r.AtMS == 0 || r.DoneMS < r.AtMS || r.Seq != last+int64(i)+1 {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	thr, ok, noTerm := recs[0], recs[1], recs[2]
	if thr.Op != "TerminateInstanceInAutoScalingGroup" || thr.Status != http.StatusBadRequest || thr.Fault != kindThrottle || thr.Term != 12 ||
		thr.Instance != aws.ToString(ids[0].InstanceId) || thr.Decrement == nil || !*thr.Decrement {
		t.Fatalf("throttled terminate: %+v", thr)
	}
	if ok.Status != http.StatusOK || ok.Fault != "" || ok.Term != 12 {
		t.Fatalf("answered terminate: %+v", ok)
	}
	if noTerm.Op != "SetDesiredCapacity" || noTerm.Term != 0 || aws.ToInt(noTerm.Desired) != 0 || noTerm.Desired == nil {
		t.Fatalf("call without a term: %+v", noTerm)
	}
}
