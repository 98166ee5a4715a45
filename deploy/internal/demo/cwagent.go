package demo

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"

	"github.com/shoal-dev/shoal/deploy/internal/sandbox"
)

// cwAgent stands in for the CloudWatch agent on every instance of the AWS
// fleet's group, at its best: it scrapes demoapp's Prometheus endpoint on
// each running instance every second (metrics_collection_interval 1) and
// sends what it collected every flush interval (force_flush_interval 10)
// with PutMetricData, StorageResolution 1, one datum per instance and
// second under the group's AutoScalingGroupName dimension, as the agent's
// aggregation_dimensions [["AutoScalingGroupName"]] does. CloudWatch's
// Average over a 10 s period is then the group's mean utilisation.
//
// It reads demoapp directly, as the agent's Prometheus scrape does, and
// nothing of Shoal's: the AWS side's metric does not go through Shoal's
// agents or coordinators.
//
// The flush runs half a flush interval into each period: an agent's flush
// phase is whatever its start gave it, and mid-period is the typical case.
// A flush right after each period boundary would leave the newest period
// empty for a moment, which the local cloud (it has no ingestion delay)
// would read as a missing, non-breaching datapoint.
type cwAgent struct {
	sb    *sandbox.Sandbox
	cw    *cloudwatch.Client
	hc    *http.Client
	group string
	flush time.Duration

	mu      sync.Mutex
	buf     []cwtypes.MetricDatum
	sent    int // datapoints accepted by PutMetricData
	dropped int // datapoints lost: a failed scrape or a refused put
	lastErr error

	cancel context.CancelFunc
	done   chan struct{}
}

// maxAgentBuffer bounds what waits for a flush: 6 instances × 60 s is far
// below it; past it, samples are counted as dropped.
const maxAgentBuffer = 5000

func newCWAgent(sb *sandbox.Sandbox, cfg aws.Config, group string, flush time.Duration) *cwAgent {
	return &cwAgent{sb: sb, cw: cloudwatch.NewFromConfig(cfg), hc: &http.Client{Timeout: 800 * time.Millisecond}, group: group, flush: flush}
}

// start runs the agent until stop or ctx ends.
func (a *cwAgent) start(ctx context.Context) {
	ctx, a.cancel = context.WithCancel(ctx)
	a.done = make(chan struct{})
	go func() {
		defer close(a.done)
		a.loop(ctx)
	}()
}

// stop ends the agent and sends what it still holds.
func (a *cwAgent) stop() {
	if a.cancel == nil {
		return
	}
	a.cancel()
	<-a.done
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	a.send(ctx)
}

// counts returns the datapoints sent and dropped so far, and the last error.
func (a *cwAgent) counts() (sent, dropped int, last error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sent, a.dropped, a.lastErr
}

func (a *cwAgent) loop(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	// The first flush half an interval past a boundary, then every flush.
	next := time.Now().Truncate(a.flush).Add(a.flush / 2)
	if !next.After(time.Now()) {
		next = next.Add(a.flush)
	}
	flush := time.NewTimer(time.Until(next))
	defer flush.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			a.collect(ctx, now)
		case <-flush.C:
			next = next.Add(a.flush)
			flush.Reset(time.Until(next))
			a.send(ctx)
		}
	}
}

// collect scrapes every running instance of the group once.
func (a *cwAgent) collect(ctx context.Context, now time.Time) {
	ctx, cancel := context.WithTimeout(ctx, 900*time.Millisecond)
	defer cancel()
	insts, err := a.sb.Instances(ctx)
	if err != nil {
		a.fail(1, err)
		return
	}
	type sample struct {
		v   float64
		err error
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var got []sample
	for _, in := range insts {
		if in.Group != a.group || in.State != "running" || in.PrivateIP == "" {
			continue
		}
		wg.Go(func() {
			v, err := a.scrape(ctx, fmt.Sprintf("http://%s:%d/metrics", in.PrivateIP, sandbox.GoldenAppPort))
			mu.Lock()
			got = append(got, sample{v, err})
			mu.Unlock()
		})
	}
	wg.Wait()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range got {
		if s.err != nil || len(a.buf) >= maxAgentBuffer {
			a.dropped++
			if s.err != nil {
				a.lastErr = s.err
			}
			continue
		}
		a.buf = append(a.buf, cwtypes.MetricDatum{
			MetricName: aws.String(AWSMetric),
			Dimensions: []cwtypes.Dimension{{Name: aws.String("AutoScalingGroupName"), Value: aws.String(a.group)}},
			Timestamp:  aws.Time(now), Value: aws.Float64(s.v), Unit: cwtypes.StandardUnitPercent,
			StorageResolution: aws.Int32(1),
		})
	}
}

// scrape reads demoapp_utilization from a Prometheus text page.
func (a *cwAgent) scrape(ctx context.Context, url string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return promValue(io.LimitReader(resp.Body, 1<<20), AWSMetric)
}

// promValue returns the value of the unlabelled sample name in a
// Prometheus text exposition.
func promValue(r io.Reader, name string) (float64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), name+" ")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			break
		}
		return strconv.ParseFloat(f[0], 64)
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s sample", name)
}

// send puts what was collected, in requests of at most 1000 datapoints
// (PutMetricData's limit).
func (a *cwAgent) send(ctx context.Context) {
	a.mu.Lock()
	buf := a.buf
	a.buf = nil
	a.mu.Unlock()
	for len(buf) > 0 {
		n := min(len(buf), 1000)
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := a.cw.PutMetricData(pctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String(AWSNamespace), MetricData: buf[:n]})
		cancel()
		a.mu.Lock()
		if err != nil {
			a.dropped += n
			a.lastErr = fmt.Errorf("put metric data: %w", err)
		} else {
			a.sent += n
		}
		a.mu.Unlock()
		buf = buf[n:]
	}
}

func (a *cwAgent) fail(n int, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.dropped += n
	a.lastErr = err
}
