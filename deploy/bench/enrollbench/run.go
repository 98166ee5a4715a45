package enrollbench

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// ErrConfig wraps configuration errors.
var ErrConfig = errors.New("invalid enrollbench config")

// Config is one enrollment run; start from DefaultConfig.
type Config struct {
	// Cloud is the local cloud's URL (its /_localcloud/instances lists the
	// instances and their IMDS endpoints).
	Cloud string
	// Counts is the Counter's URL (proxy address + CountsPath); empty
	// counts nothing.
	Counts       string
	Coordinators []string
	// CACert verifies the coordinators.
	CACert  string
	Cluster string
	Fleet   string
	// Group is the Auto Scaling group whose instances enroll; Instances of
	// them must be running.
	Group     string
	Instances int
	// CallTimeout bounds one Enroll or Connect attempt (10 s); Backoff is
	// the wait before a retry (250 ms); Timeout bounds the whole run (5 m).
	CallTimeout, Backoff, Timeout time.Duration
}

// DefaultConfig has no addresses, files or names.
func DefaultConfig() Config {
	return Config{Cluster: tlsconf.DefaultCluster, CallTimeout: 10 * time.Second, Backoff: 250 * time.Millisecond, Timeout: 5 * time.Minute}
}

// Validate names the first wrong field by its flag.
func (c Config) Validate() error {
	switch {
	case c.Cloud == "":
		return fmt.Errorf("%w: cloud: the local cloud's URL is required", ErrConfig)
	case len(c.Coordinators) == 0:
		return fmt.Errorf("%w: coordinator: at least one address is required", ErrConfig)
	case c.CACert == "":
		return fmt.Errorf("%w: ca-cert: required (enrollment runs over TLS)", ErrConfig)
	case tlsconf.CheckCluster(c.Cluster) != nil:
		return fmt.Errorf("%w: cluster: %v", ErrConfig, tlsconf.CheckCluster(c.Cluster))
	case c.Fleet == "" || c.Group == "":
		return fmt.Errorf("%w: fleet and group are required", ErrConfig)
	case c.Instances < 1 || c.Instances > maxInstances:
		return fmt.Errorf("%w: instances (%d) must be 1 to %d", ErrConfig, c.Instances, maxInstances)
	case c.CallTimeout <= 0 || c.Backoff <= 0 || c.Timeout <= 0:
		return fmt.Errorf("%w: call-timeout, backoff and timeout must be > 0", ErrConfig)
	}
	return nil
}

// maxInstances bounds a run (a /16 of loopback addresses).
const maxInstances = 60000

// Summary is what a run measured.
type Summary struct {
	Agents, Streaming, Failed, Retries int
	// AllStreaming is the time from the start until the last agent had its
	// welcome (0 when some failed).
	AllStreaming time.Duration
	// Enrolled and Streaming quantiles, per agent, from the start.
	EnrollP50, EnrollP99, StreamP50, StreamP99 time.Duration
	// Calls are the AWS calls through the Counter during the run, by
	// operation; DescribeAutoScalingInstances is the enrollment's.
	Calls     map[string]uint64
	FirstErrs []string
}

// DescribeCalls is the count of DescribeAutoScalingInstances calls.
func (s Summary) DescribeCalls() uint64 { return s.Calls["DescribeAutoScalingInstances"] }

func (s Summary) String() string {
	var calls []string
	var total uint64
	for k, v := range s.Calls {
		calls = append(calls, fmt.Sprintf("%s:%d", k, v))
		total += v
	}
	sort.Strings(calls)
	ms := func(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d)/float64(time.Millisecond)) }
	return fmt.Sprintf("agents=%d streaming=%d failed=%d retries=%d all_streaming_ms=%s enroll_p50_ms=%s enroll_p99_ms=%s stream_p50_ms=%s stream_p99_ms=%s describe_asg_instances_calls=%d aws_calls=%d aws_calls_by_op=%s",
		s.Agents, s.Streaming, s.Failed, s.Retries, ms(s.AllStreaming), ms(s.EnrollP50), ms(s.EnrollP99), ms(s.StreamP50), ms(s.StreamP99),
		s.DescribeCalls(), total, strings.Join(calls, ","))
}

// maxListBody bounds the local cloud's instance list.
const maxListBody = 64 << 20

// Instances lists the running instances of group from the local cloud.
func Instances(ctx context.Context, cloud, group string) ([]Instance, error) {
	var list []struct {
		ID    string `json:"id"`
		State string `json:"state"`
		Group string `json:"group"`
		IP    string `json:"privateIp"`
		IMDS  string `json:"imdsEndpoint"`
	}
	if err := getJSON(ctx, strings.TrimRight(cloud, "/")+"/_localcloud/instances", &list); err != nil {
		return nil, err
	}
	var out []Instance
	for _, in := range list {
		if in.Group == group && in.State == "running" && in.IMDS != "" && in.IP != "" {
			out = append(out, Instance{ID: in.ID, IP: in.IP, IMDS: in.IMDS})
		}
	}
	return out, nil
}

func getJSON(ctx context.Context, url string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(io.LimitReader(resp.Body, maxListBody)).Decode(v)
}

// Run starts one agent per instance at once and waits until every one
// streams or fails.
func Run(ctx context.Context, cfg Config) (Summary, error) {
	if err := cfg.Validate(); err != nil {
		return Summary{}, err
	}
	pemBytes, err := os.ReadFile(cfg.CACert)
	if err != nil {
		return Summary{}, fmt.Errorf("ca-cert: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pemBytes) {
		return Summary{}, fmt.Errorf("ca-cert (%s): no certificate", cfg.CACert)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	ins, err := Instances(ctx, cfg.Cloud, cfg.Group)
	if err != nil {
		return Summary{}, err
	}
	if len(ins) < cfg.Instances {
		return Summary{}, fmt.Errorf("group %s has %d running instances, want %d", cfg.Group, len(ins), cfg.Instances)
	}
	ins = ins[:cfg.Instances]
	before := map[string]uint64{}
	if cfg.Counts != "" {
		if err := getJSON(ctx, cfg.Counts, &before); err != nil {
			return Summary{}, fmt.Errorf("counts: %w", err)
		}
	}
	hc := &http.Client{Timeout: cfg.CallTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: 1, MaxConnsPerHost: 4}}
	closers := make(chan func(), len(ins))
	results := make([]result, len(ins))
	start := time.Now()
	var wg sync.WaitGroup
	for i, in := range ins {
		a := &agent{in: in, cfg: &cfg, roots: roots, hc: hc, start: start, streams: closers,
			coord: cfg.Coordinators[i%len(cfg.Coordinators)]}
		wg.Go(func() { results[i] = a.run(ctx) })
	}
	wg.Wait()
	after := map[string]uint64{}
	if cfg.Counts != "" {
		if err := getJSON(context.Background(), cfg.Counts, &after); err != nil {
			return Summary{}, fmt.Errorf("counts: %w", err)
		}
	}
	close(closers)
	for c := range closers {
		c()
	}
	sum := Summary{Agents: len(ins), Calls: map[string]uint64{}}
	for k, v := range after {
		if d := v - before[k]; d > 0 {
			sum.Calls[k] = d
		}
	}
	var enr, str []time.Duration
	for _, r := range results {
		sum.Retries += r.retries
		if r.err != nil {
			sum.Failed++
			if len(sum.FirstErrs) < 3 {
				sum.FirstErrs = append(sum.FirstErrs, r.err.Error())
			}
			continue
		}
		sum.Streaming++
		enr, str = append(enr, r.enrolled), append(str, r.streaming)
	}
	if sum.Failed == 0 {
		sum.AllStreaming = slices.Max(str)
	}
	sum.EnrollP50, sum.EnrollP99 = quantile(enr, 0.5), quantile(enr, 0.99)
	sum.StreamP50, sum.StreamP99 = quantile(str, 0.5), quantile(str, 0.99)
	return sum, nil
}

// quantile is the nearest-rank q-quantile of ds (0 for none).
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	k := int(q*float64(len(s))+0.999999) - 1
	return s[max(0, min(k, len(s)-1))]
}
