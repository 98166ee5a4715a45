package soak

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/procfs"
)

// Proc is one running process of the system under soak.
type Proc struct {
	PID  int
	Exe  string
	Args string
}

// Point is one sample of one process. Goroutines is -1 where the process
// serves no /metrics (or it did not answer).
type Point struct {
	T          float64 `json:"t_s"` // seconds since the sampler started
	RSS        int64   `json:"rss_bytes"`
	FDs        int     `json:"fds"`
	Goroutines int     `json:"goroutines"`
}

// Series is every sample of one process, in time order.
type Series struct {
	Name   string  `json:"name"`
	PID    int     `json:"pid"`
	Exe    string  `json:"exe"`
	Points []Point `json:"points"`
	// MetricsURL is where its goroutines were read ("" when nowhere).
	MetricsURL string `json:"metrics_url,omitempty"`
	start      uint64 // starttime from /proc/pid/stat, so a reused pid is a new series
}

// Sampler reads RSS and open fds from /proc (prometheus/procfs) and
// goroutines from each process's /metrics go_goroutines, for every process
// list returns, each time Sample runs.
type Sampler struct {
	list func() ([]Proc, error)
	fs   procfs.FS
	hc   *http.Client
	t0   time.Time
	now  func() time.Time

	mu     sync.Mutex
	series map[string]*Series
	order  []string
	errs   int
}

// NewSampler samples the processes list returns; now is its clock.
func NewSampler(list func() ([]Proc, error), now func() time.Time) (*Sampler, error) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return nil, fmt.Errorf("sampler: %w", err)
	}
	return &Sampler{list: list, fs: fs, hc: &http.Client{Timeout: 2 * time.Second}, t0: now(), now: now, series: map[string]*Series{}}, nil
}

// Sample takes one point of every live process. A process that exits
// between listing and reading is skipped; that is not an error.
func (s *Sampler) Sample(ctx context.Context) error {
	procs, err := s.list()
	if err != nil {
		return err
	}
	t := s.now().Sub(s.t0).Seconds()
	for _, p := range procs {
		pr, err := s.fs.Proc(p.PID)
		if err != nil {
			continue
		}
		st, err := pr.Stat()
		if err != nil || st.State == "Z" || st.ResidentMemory() == 0 {
			continue // gone, or exiting: no memory left to measure
		}
		fds, err := pr.FileDescriptorsLen()
		if err != nil {
			continue
		}
		pt := Point{T: t, RSS: int64(st.ResidentMemory()), FDs: fds, Goroutines: -1}
		url := MetricsURL(p)
		if url != "" {
			if g, err := s.goroutines(ctx, url); err == nil {
				pt.Goroutines = g
			} else {
				s.mu.Lock()
				s.errs++
				s.mu.Unlock()
			}
		}
		key := strconv.Itoa(p.PID) + "/" + strconv.FormatUint(st.Starttime, 10)
		s.mu.Lock()
		se := s.series[key]
		if se == nil {
			se = &Series{Name: Name(p), PID: p.PID, Exe: filepath.Base(p.Exe), MetricsURL: url, start: st.Starttime}
			s.series[key] = se
			s.order = append(s.order, key)
		}
		se.Points = append(se.Points, pt)
		s.mu.Unlock()
	}
	return nil
}

// Run samples now and every period until ctx ends.
func (s *Sampler) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		_ = s.Sample(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Series returns a copy of every process's samples, in order of first sight.
func (s *Sampler) Series() []Series {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Series, 0, len(s.order))
	for _, k := range s.order {
		se := *s.series[k]
		se.Points = append([]Point(nil), se.Points...)
		out = append(out, se)
	}
	return out
}

// MetricsErrors counts /metrics reads that failed.
func (s *Sampler) MetricsErrors() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.errs
}

// maxMetricsBody bounds one /metrics read.
const maxMetricsBody = 4 << 20

func (s *Sampler) goroutines(ctx context.Context, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return ParseGoroutines(io.LimitReader(resp.Body, maxMetricsBody))
}

// ParseGoroutines finds go_goroutines in a Prometheus text exposition.
func ParseGoroutines(r io.Reader) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, "go_goroutines")
		if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, fmt.Errorf("go_goroutines %q: %w", line, err)
		}
		return int(v), nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no go_goroutines")
}

// metricsFlag is the flag naming each binary's plaintext /metrics listener.
// shoal-lb's --listen is the proxy (a /metrics there would reach a backend),
// so it is read on --admin-addr.
var metricsFlag = map[string]string{
	"shoal-coordinator":            "--http-addr",
	"shoal-coordinator-failpoints": "--http-addr",
	"shoal-agent":                  "--http-addr",
	"shoal-lb":                     "--admin-addr",
	"shoal-demoapp":                "--listen",
}

// MetricsURL is where p serves /metrics, read from its command line, or ""
// when it serves none.
func MetricsURL(p Proc) string {
	flag := metricsFlag[filepath.Base(p.Exe)]
	if flag == "" {
		return ""
	}
	if v := flagValue(p.Args, flag); v != "" {
		return "http://" + v + "/metrics"
	}
	return ""
}

func flagValue(args, flag string) string {
	f := strings.Fields(args)
	for i, a := range f {
		if a == flag && i+1 < len(f) {
			return f[i+1]
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

var ipRE = regexp.MustCompile(`127\.\d+\.\d+\.\d+`)

// Name labels a process for the report: the binary, and what tells two of
// them apart (a coordinator's node id, an instance's address).
func Name(p Proc) string {
	base := strings.TrimPrefix(filepath.Base(p.Exe), "shoal-")
	switch base {
	case "coordinator", "coordinator-failpoints":
		if id := flagValue(p.Args, "--node-id"); id != "" {
			return "coordinator " + id
		}
	case "lb", "localcloud":
		return base
	case "demoapp", "agent":
		// Both run on an instance's own loopback address.
		if ip := ipRE.FindString(p.Args); ip != "" {
			return base + " " + ip
		}
	}
	return base + " pid " + strconv.Itoa(p.PID)
}
