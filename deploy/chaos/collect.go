package chaos

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/shoal-dev/shoal/deploy/internal/localcloud"
	"github.com/shoal-dev/shoal/deploy/internal/sandbox"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// The coordinator's liveness series (coordinator/internal/publish): one
// sample per publish period, so a period holding two was published twice.
const (
	heartbeatNamespace = "Shoal"
	heartbeatMetric    = "CoordinatorHeartbeat"
)

// maxAuditBytes bounds the audit log read (200,000 records of ~250 bytes).
const maxAuditBytes = 64 << 20

// readAudit reads the local cloud's audit log.
func readAudit(ctx context.Context, cloudURL string) ([]localcloud.AuditRecord, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, cloudURL+"/_localcloud/audit", nil)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("audit: %s", resp.Status)
	}
	if d := resp.Header.Get("X-Localcloud-Audit-Dropped"); d != "" && d != "0" {
		return nil, fmt.Errorf("audit: the local cloud dropped %s records; the check would be blind", d)
	}
	var out []localcloud.AuditRecord
	sc := bufio.NewScanner(io.LimitReader(resp.Body, maxAuditBytes))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var a localcloud.AuditRecord
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			return nil, fmt.Errorf("audit line %q: %w", sc.Bytes(), err)
		}
		out = append(out, a)
	}
	return out, sc.Err()
}

// readDecisions lists every kept decision of the fleet.
func readDecisions(ctx context.Context, c shoalv1.ControlServiceClient, fleet string) ([]Decision, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	resp, err := c.ListDecisions(ctx, &shoalv1.ListDecisionsRequest{Fleet: fleet})
	if err != nil {
		return nil, fmt.Errorf("decisions: %w", err)
	}
	var out []Decision
	for _, d := range resp.GetDecisions() {
		out = append(out, Decision{ID: d.GetId(), AtMS: d.GetCreateTime().AsTime().UnixMilli(), From: int(d.GetPreviousCapacity()),
			To: int(d.GetCapacity()), Status: d.GetStatus().String(), Source: d.GetSource().String()})
	}
	return out, nil
}

// nodeFSM reads one node's applied index and FSM snapshot (stale: the
// node's own state), and hashes the snapshot. The index is read before and
// after; a node that applied something in between is asked again.
func nodeFSM(ctx context.Context, c shoalv1.ControlServiceClient) (uint64, string, error) {
	for range 20 {
		st, err := c.GetStatus(ctx, &shoalv1.GetStatusRequest{Stale: true})
		if err != nil {
			return 0, "", err
		}
		stream, err := c.SaveSnapshot(ctx, &shoalv1.SaveSnapshotRequest{Stale: true})
		if err != nil {
			return 0, "", err
		}
		h := sha256.New()
		for {
			m, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return 0, "", err
			}
			h.Write(m.GetChunk())
		}
		st2, err := c.GetStatus(ctx, &shoalv1.GetStatusRequest{Stale: true})
		if err != nil {
			return 0, "", err
		}
		if st.GetAppliedIndex() == st2.GetAppliedIndex() {
			return st.GetAppliedIndex(), hex.EncodeToString(h.Sum(nil)), nil
		}
	}
	return 0, "", errors.New("the node kept applying while its snapshot was read")
}

// readFSMs reads every node's FSM hash until all agree on the applied
// index (writes may still trickle in: the scaler's, the instance
// registry's), or within passes; the last reading is returned either way.
func readFSMs(ctx context.Context, sb *sandbox.Sandbox, within time.Duration) []NodeFSM {
	var last []NodeFSM
	_ = sandbox.Poll(ctx, within, "every node's FSM at one applied index", func(ctx context.Context) error {
		last = last[:0]
		for _, n := range sb.Nodes() {
			f := NodeFSM{Node: n.ID}
			cc, err := sb.Dial(n.RPCAddr)
			if err != nil {
				f.Err = err.Error()
				last = append(last, f)
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			f.Applied, f.Hash, err = nodeFSM(cctx, shoalv1.NewControlServiceClient(cc))
			cancel()
			cc.Close()
			if err != nil {
				f.Err = err.Error()
			}
			last = append(last, f)
		}
		for _, f := range last {
			if f.Err != "" || f.Applied != last[0].Applied || f.Hash != last[0].Hash {
				return fmt.Errorf("not yet equal: %+v", last)
			}
		}
		return nil
	})
	return append([]NodeFSM(nil), last...)
}

// readPeriods reads the coordinator heartbeat from CloudWatch at 1 s
// resolution, from `from` on: one point per published period, stamped
// with the period's start, whose SampleCount says how often it was
// published. (Buckets of the publish interval would align to the query's
// start, not the periods', and could hold two honest periods after a
// failover shifted them.)
func readPeriods(ctx context.Context, cfg aws.Config, from time.Time) ([]Period, error) {
	cw := cloudwatch.NewFromConfig(cfg)
	lm, err := cw.ListMetrics(ctx, &cloudwatch.ListMetricsInput{Namespace: aws.String(heartbeatNamespace), MetricName: aws.String(heartbeatMetric)})
	if err != nil {
		return nil, fmt.Errorf("list metrics: %w", err)
	}
	if len(lm.Metrics) != 1 {
		return nil, fmt.Errorf("list metrics: %d %s series, want 1", len(lm.Metrics), heartbeatMetric)
	}
	gd, err := cw.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(from.Truncate(time.Second)), EndTime: aws.Time(time.Now().Add(time.Minute)),
		MetricDataQueries: []cwtypes.MetricDataQuery{{
			Id:         aws.String("hb"),
			MetricStat: &cwtypes.MetricStat{Metric: &lm.Metrics[0], Period: aws.Int32(1), Stat: aws.String("SampleCount")},
		}},
	})
	if err != nil {
		return nil, fmt.Errorf("get metric data: %w", err)
	}
	var out []Period
	for _, r := range gd.MetricDataResults {
		for i, ts := range r.Timestamps {
			out = append(out, Period{StartMS: ts.UnixMilli(), SampleCount: r.Values[i]})
		}
	}
	return out, nil
}

// converge measures how long until the group's desired capacity equals
// the fleet's committed one, up to within; -1 if it never did.
func converge(ctx context.Context, cfg aws.Config, c shoalv1.ControlServiceClient, fleet, group string, within time.Duration) Convergence {
	as := autoscaling.NewFromConfig(cfg)
	start := time.Now()
	conv := Convergence{AfterMS: -1}
	_ = sandbox.Poll(ctx, within, "the group at the fleet's desired capacity", func(ctx context.Context) error {
		f, err := c.GetFleet(ctx, &shoalv1.GetFleetRequest{Fleet: fleet})
		if err != nil {
			return err
		}
		g, err := as.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{group}})
		if err != nil {
			return err
		}
		if len(g.AutoScalingGroups) != 1 {
			return fmt.Errorf("group %s: %d found", group, len(g.AutoScalingGroups))
		}
		conv.FleetDesired, conv.GroupDesired = int(f.GetFleet().GetDesired()), int(aws.ToInt32(g.AutoScalingGroups[0].DesiredCapacity))
		if conv.FleetDesired != conv.GroupDesired {
			return fmt.Errorf("group %d, fleet %d", conv.GroupDesired, conv.FleetDesired)
		}
		conv.AfterMS = time.Since(start).Milliseconds()
		return nil
	})
	return conv
}
