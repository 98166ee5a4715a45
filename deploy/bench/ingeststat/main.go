// Command ingeststat is deploy/bench/ingest.sh's arithmetic: it snapshots a
// coordinator (its /metrics latency histogram and its process's CPU time
// and memory from /proc) and turns two snapshots into one table row.
//
//	ingeststat snap -pid PID -url http://127.0.0.1:PORT/metrics > a.json
//	ingeststat diff a.json b.json
//	ingeststat ports 9
//
// diff prints `samples backlog p50_ms p99_ms cpu_pct rss_mb hwm_mb`, the
// quantiles interpolated within buckets as Prometheus' histogram_quantile
// does. It is a benchmark helper: it reads, never changes, what it measures.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"sort"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/procfs"
)

const (
	latencyMetric = "shoal_ingest_sample_latency_seconds"
	backlogMetric = "shoal_ingest_backlog_samples_total"
)

// bucket is one finite histogram bucket: cumulative count at or below LE.
type bucket struct {
	LE    float64 `json:"le"`
	Count uint64  `json:"count"`
}

type snapshot struct {
	UnixNano   int64    `json:"unix_nano"`
	CPUSeconds float64  `json:"cpu_seconds"`
	RSSBytes   uint64   `json:"rss_bytes"`
	HWMBytes   uint64   `json:"hwm_bytes"`
	Count      uint64   `json:"count"`
	Buckets    []bucket `json:"buckets"`
	Backlog    float64  `json:"backlog"`
}

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ingeststat:", err)
		os.Exit(1)
	}
}

func run(args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: ingeststat snap -pid PID -url URL | ingeststat diff A B | ingeststat ports [N]")
	}
	switch args[0] {
	case "snap":
		fs := flag.NewFlagSet("snap", flag.ContinueOnError)
		pid := fs.Int("pid", 0, "coordinator process id")
		url := fs.String("url", "", "coordinator /metrics URL")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *pid <= 0 || *url == "" {
			return errors.New("snap: -pid and -url are required")
		}
		s, err := snap(*pid, *url)
		if err != nil {
			return err
		}
		return json.NewEncoder(out).Encode(s)
	case "ports":
		// Free loopback ports for the cluster, found by listening on :0. Another
		// process may take one before the node binds it; the script then fails
		// at start-up, loudly.
		n := 9
		if len(args) == 2 {
			if _, err := fmt.Sscan(args[1], &n); err != nil || n < 1 {
				return fmt.Errorf("ports: count %q must be a positive number", args[1])
			}
		}
		var ls []net.Listener
		defer func() {
			for _, l := range ls {
				_ = l.Close()
			}
		}()
		for range n {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return err
			}
			ls = append(ls, l)
			fmt.Fprintln(out, l.Addr().(*net.TCPAddr).Port)
		}
		return nil
	case "diff":
		if len(args) != 3 {
			return errors.New("diff: want two snapshot files")
		}
		var a, b snapshot
		for i, s := range []*snapshot{&a, &b} {
			raw, err := os.ReadFile(args[1+i])
			if err != nil {
				return err
			}
			if err := json.Unmarshal(raw, s); err != nil {
				return fmt.Errorf("%s: %w", args[1+i], err)
			}
		}
		r, err := diff(a, b)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(out, "%d %.0f %.1f %.1f %.0f %.0f %.0f\n", r.samples, r.backlog, r.p50*1000, r.p99*1000, r.cpuPct, float64(b.RSSBytes)/(1<<20), float64(b.HWMBytes)/(1<<20))
		return err
	}
	return fmt.Errorf("unknown subcommand %q", args[0])
}

func snap(pid int, url string) (snapshot, error) {
	s := snapshot{UnixNano: time.Now().UnixNano()}
	p, err := procfs.NewProc(pid)
	if err != nil {
		return s, err
	}
	st, err := p.Stat()
	if err != nil {
		return s, err
	}
	s.CPUSeconds = st.CPUTime()
	status, err := p.NewStatus()
	if err != nil {
		return s, err
	}
	s.RSSBytes, s.HWMBytes = status.VmRSS, status.VmHWM

	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("%s: %s", url, resp.Status)
	}
	fams, err := parse(resp.Body, resp.Header)
	if err != nil {
		return s, fmt.Errorf("%s: %w", url, err)
	}
	if f := fams[backlogMetric]; f != nil && len(f.GetMetric()) > 0 {
		s.Backlog = f.GetMetric()[0].GetCounter().GetValue()
	}
	f := fams[latencyMetric]
	if f == nil || len(f.GetMetric()) == 0 {
		return s, fmt.Errorf("%s: no %s", url, latencyMetric)
	}
	h := f.GetMetric()[0].GetHistogram()
	s.Count = h.GetSampleCount()
	for _, b := range h.GetBucket() {
		if !math.IsInf(b.GetUpperBound(), 1) {
			s.Buckets = append(s.Buckets, bucket{LE: b.GetUpperBound(), Count: b.GetCumulativeCount()})
		}
	}
	return s, nil
}

func parse(r io.Reader, h http.Header) (map[string]*dto.MetricFamily, error) {
	dec := expfmt.NewDecoder(r, expfmt.ResponseFormat(h))
	fams := map[string]*dto.MetricFamily{}
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); err != nil {
			if errors.Is(err, io.EOF) {
				return fams, nil
			}
			return nil, err
		}
		fams[mf.GetName()] = &mf
	}
}

type row struct {
	samples          uint64
	backlog          float64
	p50, p99, cpuPct float64
}

// diff is the window between snapshots a and b.
func diff(a, b snapshot) (row, error) {
	if b.UnixNano <= a.UnixNano {
		return row{}, errors.New("diff: second snapshot is not later than the first")
	}
	if len(a.Buckets) != len(b.Buckets) {
		return row{}, errors.New("diff: bucket layouts differ")
	}
	d := make([]bucket, len(b.Buckets))
	for i := range b.Buckets {
		d[i] = bucket{LE: b.Buckets[i].LE, Count: b.Buckets[i].Count - a.Buckets[i].Count}
	}
	total := b.Count - a.Count
	secs := float64(b.UnixNano-a.UnixNano) / 1e9
	return row{samples: total, backlog: b.Backlog - a.Backlog,
		p50: quantile(0.5, d, total), p99: quantile(0.99, d, total),
		cpuPct: 100 * (b.CPUSeconds - a.CPUSeconds) / secs}, nil
}

// quantile interpolates linearly within the bucket holding rank q·total,
// from the bucket below's bound (0 for the first). Past the last finite
// bucket it returns +Inf; with no samples, NaN.
func quantile(q float64, buckets []bucket, total uint64) float64 {
	if total == 0 {
		return math.NaN()
	}
	rank := q * float64(total)
	i := sort.Search(len(buckets), func(i int) bool { return float64(buckets[i].Count) >= rank })
	if i == len(buckets) {
		return math.Inf(1)
	}
	lo, below := 0.0, 0.0
	if i > 0 {
		lo, below = buckets[i-1].LE, float64(buckets[i-1].Count)
	}
	in := float64(buckets[i].Count) - below
	if in == 0 {
		return buckets[i].LE
	}
	return lo + (buckets[i].LE-lo)*(rank-below)/in
}
