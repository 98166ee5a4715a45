package publish

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/aws/smithy-go/encoding/cbor"
)

// TestOperationsMatchCalls drives the publisher, the reconciler (through a
// create and a delete) and the reader against the CBOR server and checks
// that the operations they sent are exactly Operations(), which the IAM
// policy is checked against.
func TestOperationsMatchCalls(t *testing.T) {
	s := &cborServer{describeAlarms: cbor.Map{"MetricAlarms": cbor.List{cbor.Map{
		"AlarmName":  cbor.String("shoal-gone-cpu-high"),
		"Namespace":  cbor.String(Namespace),
		"MetricName": cbor.String("CPUUtilization"),
		"Dimensions": cbor.List{cbor.Map{"Name": cbor.String(DimCluster), "Value": cbor.String("shoal")}},
	}}}}
	cw := startCBOR(t, s, 1)
	ctx := context.Background()

	p := newTestPublisher(t, cw, nil)
	reqs := p.build(Period{Start: t0})
	if err := p.send(ctx, reqs[0]); err != nil {
		t.Fatal(err)
	}
	r, err := NewReconciler(cw, ReconcilerConfig{Cluster: "shoal", HeartbeatPeriod: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ch, err := r.Reconcile(ctx, []FleetAlarms{{Fleet: "web", Group: "g", Policy: cpuPolicy(50)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.Created) != 3 || fmt.Sprint(ch.Deleted) != "[shoal-gone-cpu-high]" {
		t.Fatalf("changes = %+v", ch)
	}
	if _, err := NewReader(cw, "shoal").Series(ctx, Query{Group: "g", Metric: "cpu", Start: t0, End: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, op := range s.operations() {
		seen["cloudwatch:"+op] = true
	}
	var got []string
	for op := range seen {
		got = append(got, op)
	}
	sort.Strings(got)
	if fmt.Sprint(got) != fmt.Sprint(Operations()) {
		t.Fatalf("operations sent %v, Operations() %v", got, Operations())
	}
}
