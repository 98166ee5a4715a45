package cli

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"github.com/valyala/fasthttp"
	"google.golang.org/grpc"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/proto/rpc"
)

// loadOpts configures `shoal-lb loadtest`.
type loadOpts struct {
	target      string
	rate        int
	profile     string
	duration    time.Duration
	warmup      time.Duration
	grpc        bool
	connections int
	streams     int
	csvPath     string
	timeout     time.Duration
	quiet       bool
}

func newLoadtestCmd() *cobra.Command {
	o := loadOpts{}
	cmd := &cobra.Command{
		Use:   "loadtest",
		Short: "drive HTTP or gRPC load at a target and report rate, latency, errors and which instance answered",
		Long: `loadtest sends requests for --duration. With --rate 0 it runs closed-loop
(every worker sends as soon as its previous request ends); otherwise it paces
to --rate requests/s, shaped by --profile: a comma list of phases, each
taking an equal share of the duration: steady, ramp (0 -> rate), spike
(rate, 5x in the middle fifth), down (rate -> 0).

gRPC calls grpc.testing.TestService/UnaryCall on --target host:port.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(); err != nil {
				return err
			}
			return o.run(cmd.Context(), cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.target, "target", "", "http://host:port/path, or host:port with --grpc")
	f.IntVar(&o.rate, "rate", 0, "requests per second (0: closed loop, as fast as the workers go)")
	f.StringVar(&o.profile, "profile", "steady", "comma list of phases: steady, ramp, spike, down")
	f.DurationVar(&o.duration, "duration", 10*time.Second, "measured duration")
	f.DurationVar(&o.warmup, "warmup", 0, "unmeasured warm-up before --duration")
	f.BoolVar(&o.grpc, "grpc", false, "send gRPC unary calls instead of HTTP GETs")
	f.IntVar(&o.connections, "connections", 1, "client connections")
	f.IntVar(&o.streams, "streams", 64, "concurrent requests per connection (HTTP/1.1: 1 per connection)")
	f.StringVar(&o.csvPath, "csv", "", "write one CSV row per second to this file")
	f.DurationVar(&o.timeout, "timeout", 10*time.Second, "per-request timeout")
	f.BoolVar(&o.quiet, "quiet", false, "print only the summary")
	return cmd
}

func (o *loadOpts) validate() error {
	switch {
	case o.target == "":
		return errors.New("target: required")
	case o.rate < 0:
		return fmt.Errorf("rate (%d) must be >= 0", o.rate)
	case o.duration <= 0:
		return fmt.Errorf("duration (%s) must be > 0", o.duration)
	case o.connections < 1:
		return fmt.Errorf("connections (%d) must be >= 1", o.connections)
	case o.streams < 1:
		return fmt.Errorf("streams (%d) must be >= 1", o.streams)
	}
	for _, p := range strings.Split(o.profile, ",") {
		if _, ok := phases[p]; !ok {
			return fmt.Errorf("profile: unknown phase %q (want steady, ramp, spike or down)", p)
		}
	}
	if !o.grpc {
		u, err := url.Parse(o.target)
		if err != nil || u.Scheme != "http" || u.Host == "" {
			return fmt.Errorf("target (%q) must be http://host:port/path", o.target)
		}
	}
	return nil
}

// phases map progress within a phase (0..1) to a share of --rate.
var phases = map[string]func(float64) float64{
	"steady": func(float64) float64 { return 1 },
	"ramp":   func(x float64) float64 { return x },
	"down":   func(x float64) float64 { return 1 - x },
	"spike": func(x float64) float64 {
		if x >= 0.4 && x < 0.6 {
			return 5
		}
		return 1
	},
}

// hist is a log-bucketed latency histogram (about 2 % resolution) that
// workers update with atomics.
type hist struct{ b [1200]atomic.Uint64 }

func (h *hist) add(d time.Duration) {
	us := max(float64(d)/1e3, 1)
	i := min(int(math.Log(us)/math.Log(1.02)), len(h.b)-1)
	h.b[i].Add(1)
}

func (h *hist) quantile(q float64) time.Duration {
	var total uint64
	for i := range h.b {
		total += h.b[i].Load()
	}
	if total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(total)))
	var acc uint64
	for i := range h.b {
		acc += h.b[i].Load()
		if acc >= rank {
			return time.Duration(math.Pow(1.02, float64(i+1)) * 1e3)
		}
	}
	return 0
}

type window struct {
	ok, errs atomic.Uint64
	lat      hist
	mu       sync.Mutex
	codes    map[string]uint64
	inst     map[string]uint64
}

func newWindow() *window { return &window{codes: map[string]uint64{}, inst: map[string]uint64{}} }

func (w *window) record(d time.Duration, code, inst string) {
	w.lat.add(d)
	if code == "" {
		w.ok.Add(1)
	} else {
		w.errs.Add(1)
	}
	if code == "" && inst == "" {
		return
	}
	w.mu.Lock()
	if code != "" {
		w.codes[code]++
	}
	if inst != "" {
		w.inst[inst]++
	}
	w.mu.Unlock()
}

type doer func(ctx context.Context) (code, instance string)

func (o *loadOpts) run(ctx context.Context, out io.Writer) error {
	workers, do, closeFn, err := o.client()
	if err != nil {
		return err
	}
	defer closeFn()
	var cur atomic.Pointer[window]
	cur.Store(newWindow())
	total := newWindow()
	measuring := atomic.Bool{}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var tokens chan struct{}
	if o.rate > 0 {
		tokens = make(chan struct{}, workers)
	}
	var dropped atomic.Uint64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				if tokens != nil {
					select {
					case <-tokens:
					case <-ctx.Done():
						return
					}
				} else if ctx.Err() != nil {
					return
				}
				start := time.Now()
				rctx, rcancel := context.WithTimeout(ctx, o.timeout)
				code, inst := do(rctx)
				rcancel()
				if ctx.Err() != nil {
					return
				}
				d := time.Since(start)
				if measuring.Load() {
					cur.Load().record(d, code, inst)
					total.record(d, code, inst)
				}
			}
		})
	}
	phaseList := strings.Split(o.profile, ",")
	if o.rate > 0 {
		go func() {
			t := time.NewTicker(10 * time.Millisecond)
			defer t.Stop()
			begin := time.Now()
			credit := 0.0
			last := begin
			for {
				select {
				case <-ctx.Done():
					return
				case now := <-t.C:
					el := now.Sub(begin) - o.warmup
					frac := 0.0
					if el > 0 {
						frac = float64(el) / float64(o.duration)
					}
					idx := min(int(frac*float64(len(phaseList))), len(phaseList)-1)
					within := frac*float64(len(phaseList)) - float64(idx)
					r := float64(o.rate) * phases[phaseList[idx]](min(within, 1))
					credit += r * now.Sub(last).Seconds()
					last = now
					for credit >= 1 {
						credit--
						select {
						case tokens <- struct{}{}:
						default:
							dropped.Add(1)
						}
					}
				}
			}
		}()
	}
	if o.warmup > 0 {
		select {
		case <-time.After(o.warmup):
		case <-ctx.Done():
		}
	}
	var cw *csv.Writer
	if o.csvPath != "" {
		f, err := os.Create(o.csvPath)
		if err != nil {
			return fmt.Errorf("csv: %w", err)
		}
		defer f.Close()
		cw = csv.NewWriter(f)
		defer cw.Flush()
		cw.Write([]string{"second", "requests", "ok", "errors", "p50_ms", "p99_ms", "errors_by_code", "instances"})
	}
	measuring.Store(true)
	begin := time.Now()
	tick := time.NewTicker(time.Second)
	sec := 0
	for ctx.Err() == nil && time.Since(begin) < o.duration {
		select {
		case <-ctx.Done():
		case <-tick.C:
			sec++
			w := cur.Swap(newWindow())
			line := []string{strconv.Itoa(sec), strconv.FormatUint(w.ok.Load()+w.errs.Load(), 10), strconv.FormatUint(w.ok.Load(), 10),
				strconv.FormatUint(w.errs.Load(), 10), ms(w.lat.quantile(0.5)), ms(w.lat.quantile(0.99)), kv(w, w.codes), kv(w, w.inst)}
			if cw != nil {
				cw.Write(line)
			}
			if !o.quiet {
				fmt.Fprintf(out, "t=%ds rate=%s ok=%s err=%s p50=%sms p99=%sms codes=%s instances=%s\n", sec, line[1], line[2], line[3], line[4], line[5], line[6], line[7])
			}
		}
	}
	measuring.Store(false)
	el := time.Since(begin)
	tick.Stop()
	cancel()
	wg.Wait()
	n := total.ok.Load() + total.errs.Load()
	fmt.Fprintf(out, "summary requests=%d ok=%d errors=%d rps=%.0f p50_ms=%s p99_ms=%s dropped=%d\n",
		n, total.ok.Load(), total.errs.Load(), float64(n)/el.Seconds(), ms(total.lat.quantile(0.5)), ms(total.lat.quantile(0.99)), dropped.Load())
	fmt.Fprintf(out, "errors_by_code %s\n", kv(total, total.codes))
	fmt.Fprintf(out, "instances %s\n", kv(total, total.inst))
	return nil
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 3, 64) }

func kv(w *window, m map[string]uint64) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + strconv.FormatUint(m[k], 10)
	}
	return strings.Join(parts, ";")
}

// client returns the worker count and the request function.
func (o *loadOpts) client() (int, doer, func(), error) {
	if o.grpc {
		conns := make([]testpb.TestServiceClient, o.connections)
		var ccs []*grpc.ClientConn
		for i := range conns {
			cc, err := rpc.Dial(o.target)
			if err != nil {
				return 0, nil, nil, err
			}
			ccs = append(ccs, cc)
			conns[i] = testpb.NewTestServiceClient(cc)
		}
		var next atomic.Uint64
		req := &testpb.SimpleRequest{Payload: &testpb.Payload{Body: []byte("shoal")}}
		do := func(ctx context.Context) (string, string) {
			c := conns[next.Add(1)%uint64(len(conns))]
			var md metadata.MD
			resp, err := c.UnaryCall(ctx, req, grpc.Header(&md))
			if err != nil {
				return status.Code(err).String(), instanceOf(md, "")
			}
			return "", instanceOf(md, resp.GetHostname())
		}
		return o.connections * o.streams, do, func() {
			for _, cc := range ccs {
				cc.Close()
			}
		}, nil
	}
	u, _ := url.Parse(o.target)
	hc := &fasthttp.HostClient{Addr: u.Host, MaxConns: o.connections, MaxConnWaitTimeout: o.timeout, ReadTimeout: o.timeout, WriteTimeout: o.timeout}
	uri := o.target
	instHdr := []byte("X-Shoal-Instance")
	do := func(ctx context.Context) (string, string) {
		req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
		defer fasthttp.ReleaseRequest(req)
		defer fasthttp.ReleaseResponse(resp)
		req.SetRequestURI(uri)
		if err := hc.Do(req, resp); err != nil {
			return "transport", ""
		}
		inst := string(resp.Header.PeekBytes(instHdr))
		if inst == "" {
			b := resp.Body()
			if i := bytes.IndexByte(b, '\n'); i >= 0 {
				b = b[:i]
			}
			inst = string(b[:min(len(b), 40)])
		}
		if sc := resp.StatusCode(); sc >= 400 {
			return "http_" + strconv.Itoa(sc), inst
		}
		return "", inst
	}
	return o.connections, do, hc.CloseIdleConnections, nil
}

func instanceOf(md metadata.MD, fallback string) string {
	if v := md.Get("x-shoal-instance"); len(v) > 0 {
		return v[0]
	}
	return fallback
}
