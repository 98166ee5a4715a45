package ingest

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	clusterv1 "github.com/shoal-dev/shoal/proto/gen/shoal/cluster/v1"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// agentCounts reads SHOAL_INGEST_AGENTS ("100,1000" by default): the
// machine is shared, so the big counts are asked for explicitly.
func agentCounts() []int {
	spec := os.Getenv("SHOAL_INGEST_AGENTS")
	if spec == "" {
		spec = "100,1000"
	}
	var out []int
	for _, f := range strings.Split(spec, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

// BenchmarkIngest is the ingest load generator: N simulated agents at 1 Hz
// with 10 metrics each, spread over a leader and two followers in this
// process (bufconn). One iteration is one second of the whole fleet sending
// (run with -benchtime=10x for ten seconds). It reports the p50/p99
// sample-to-aggregate latency (sample timestamp to the leader's ring) and
// this process's CPU (% of one core) and peak RSS, which include the
// simulated agents and followers, so they are an upper bound for the leader.
func BenchmarkIngest(b *testing.B) {
	for _, n := range agentCounts() {
		b.Run(fmt.Sprintf("agents=%d", n), func(b *testing.B) { benchIngest(b, n) })
	}
}

func benchIngest(b *testing.B, n int) {
	nw := &network{tcp: true}
	reg := newRegistry()
	// The forward period these figures have always been taken with.
	cfg := func(c *Config) { c.ForwardEvery = 20 * time.Millisecond }
	leader := startNode(b, nw, "L", true, "L", reg, true, cfg)
	// Guarded by the leader's lock, under which onApply runs.
	var (
		lat     []time.Duration
		applied int
		seen    = map[string]bool{}
	)
	changed := make(chan struct{}, 1)
	leader.svc.onApply = func(rep *clusterv1.InstanceReport, at time.Time) {
		for _, s := range rep.GetSamples() {
			lat = append(lat, at.Sub(time.UnixMilli(s.GetUnixMs())))
			applied++
		}
		if len(rep.GetSamples()) > 0 {
			seen[rep.GetHello().GetInstanceId()] = true
		}
		select {
		case changed <- struct{}{}:
		default:
		}
	}
	// awaitApplied waits up to d until cond holds under the leader's lock; each
	// report the leader applies wakes it to look again.
	awaitApplied := func(d time.Duration, cond func() bool) bool {
		deadline := time.NewTimer(d)
		defer deadline.Stop()
		for {
			leader.svc.mu.Lock()
			ok := cond()
			leader.svc.mu.Unlock()
			if ok {
				return true
			}
			select {
			case <-changed:
			case <-deadline.C:
				return false
			}
		}
	}
	f1 := startNode(b, nw, "F1", false, "L", reg, true, cfg)
	f2 := startNode(b, nw, "F2", false, "L", reg, true, cfg)
	pollUntil(b, "forward streams", func() bool { return f1.svc.forwarding() && f2.svc.forwarding() })
	nodes := []string{"L", "F1", "F2"}
	agents := make([]*testAgent, n)
	for i := range agents {
		a, err := connect(b, nw, nodes[i%3], hello(fmt.Sprintf("i-%05d", i), 1))
		if err != nil {
			b.Fatal(err)
		}
		agents[i] = a
	}
	names := []string{"cpu", "mem", "load1", "net_rx", "net_tx", "disk", "queue", "inflight", "rps", "errors"}
	// round is one second of the fleet at 1 Hz. This is the load generator's
	// schedule, so it runs on real time: the fleet is spread over the second
	// in 100 slots, as real agents' clocks are spread, and a slot already
	// late goes at once so a slow moment bunches samples rather than
	// thinning them.
	round := func() {
		start := time.Now()
		per := (n + 99) / 100
		for j, a := range agents {
			if j%per == 0 {
				if d := time.Until(start.Add(time.Duration(j/per) * 10 * time.Millisecond)); d > 0 {
					time.Sleep(d)
				}
			}
			v := make(map[string]float64, len(names))
			for k, name := range names {
				v[name] = float64(j + k)
			}
			a.seq++
			if err := a.st.Send(&shoalv1.ConnectRequest{Msg: &shoalv1.ConnectRequest_Batch{Batch: &shoalv1.SampleBatch{
				Seq: a.seq, Ready: true, Samples: []*shoalv1.Sample{{UnixMs: time.Now().UnixMilli(), Values: v}}}}}); err != nil {
				b.Fatalf("agent %d: %v", j, err)
			}
		}
		if d := time.Until(start.Add(time.Second)); d > 0 {
			time.Sleep(d)
		}
	}
	round() // warm up: every instance known to the leader
	if !awaitApplied(wait, func() bool { return len(seen) == n }) {
		b.Fatalf("the leader has samples from %d of %d agents after %s", len(seen), n, wait)
	}
	leader.svc.mu.Lock()
	lat, applied = lat[:0], 0
	leader.svc.mu.Unlock()

	cpu0, _ := cpuAndRSS()
	wall0 := time.Now()
	b.ResetTimer()
	for range b.N {
		round()
	}
	b.StopTimer()
	want := n * b.N
	// What has not arrived 5 s after the last round shows as applied-% < 100.
	awaitApplied(5*time.Second, func() bool { return applied >= want })
	cpu1, rss := cpuAndRSS()
	wall := time.Since(wall0)
	leader.svc.mu.Lock()
	p50, p99, got := percentile(lat, 0.5), percentile(lat, 0.99), applied
	leader.svc.mu.Unlock()
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(got)/wall.Seconds(), "samples/s")
	b.ReportMetric(float64(got)/float64(want)*100, "applied-%")
	b.ReportMetric(100*(cpu1-cpu0).Seconds()/wall.Seconds(), "cpu-%core")
	b.ReportMetric(float64(rss)/1024, "peak-rss-MB")
}

// pollUntil checks cond every 10 ms for up to wait of real time. Only the
// benchmark uses it: it runs over TCP, which no synctest bubble can hold,
// and nothing tells it when a follower's forward stream is up.
func pollUntil(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			tb.Fatalf("no %s after %s", what, wait)
		case <-tick.C:
		}
	}
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

func cpuAndRSS() (cpu time.Duration, maxRSSKB int64) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), ru.Maxrss
}
