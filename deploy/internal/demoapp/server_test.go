package demoapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	demov1 "github.com/shoal-dev/shoal/proto/gen/shoal/demo/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
)

type harness struct {
	srv    *Server
	ln     *bufconn.Listener
	http   *http.Client
	grpc   demov1.GreeterServiceClient
	conn   *grpc.ClientConn
	stop   context.CancelFunc
	served chan error
}

// start serves DefaultConfig with no real CPU burnt, edited by edit.
func start(t *testing.T, edit func(*Config)) *harness {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Listen, cfg.Work, cfg.Logger = ":0", 0, slog.New(slog.DiscardHandler)
	edit(&cfg)
	srv, err := New(cfg, "i-0test")
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{srv: srv, ln: bufconn.Listen(1 << 20), served: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	h.stop = cancel
	go func() { h.served <- srv.Serve(ctx, h.ln) }()
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) { return h.ln.DialContext(ctx) }
	tr := &http.Transport{DialContext: dial, MaxConnsPerHost: 0, MaxIdleConnsPerHost: 100}
	h.http = &http.Client{Transport: tr, Timeout: 20 * time.Second}
	cc, err := rpc.Dial("bufnet", grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return h.ln.DialContext(ctx) }))
	if err != nil {
		t.Fatal(err)
	}
	h.grpc = demov1.NewGreeterServiceClient(cc)
	h.conn = cc
	t.Cleanup(func() {
		cancel()
		cc.Close()
		tr.CloseIdleConnections()
		select {
		case <-h.served:
		case <-time.After(10 * time.Second):
			t.Error("server did not stop within 10s")
		}
	})
	return h
}

func (h *harness) get(path string) (*http.Response, string, error) {
	resp, err := h.http.Get("http://demo" + path)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

func (h *harness) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, body, err := h.get("/metrics")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %v %v", resp, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	mf, ok := families[name]
	if !ok || len(mf.GetMetric()) == 0 {
		t.Fatalf("metric %s not exported", name)
	}
	var sum float64
	for _, m := range mf.GetMetric() {
		switch {
		case m.GetGauge() != nil:
			sum += m.GetGauge().GetValue()
		case m.GetCounter() != nil:
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// waitFor runs inside a synctest bubble: it checks cond each time every
// goroutine of the bubble is blocked, and only then lets the fake clock
// move on by step (the capacity model serves in time). d bounds the wait on
// the fake clock.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	const step = 10 * time.Millisecond
	deadline := time.Now().Add(d)
	for {
		synctest.Wait()
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s (fake clock) waiting for %s", d, what)
		}
		<-time.After(step)
	}
}

func TestInstanceIDInResponses(t *testing.T) {
	h := start(t, func(c *Config) { c.Capacity, c.QueueSize = 1000, 10 })
	t.Run("http", func(t *testing.T) {
		resp, body, err := h.get("/anything")
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, body)
		}
		if got := resp.Header.Get(InstanceHeader); got != "i-0test" {
			t.Errorf("%s = %q, want i-0test", InstanceHeader, got)
		}
		if !strings.Contains(body, "i-0test") {
			t.Errorf("body %q does not name the instance", body)
		}
	})
	t.Run("grpc", func(t *testing.T) {
		var md metadata.MD
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := h.grpc.SayHello(ctx, &demov1.SayHelloRequest{Name: "ops"}, grpc.Header(&md))
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetInstanceId() != "i-0test" || !strings.Contains(resp.GetMessage(), "hello ops from i-0test") {
			t.Errorf("response %v does not name the instance", resp)
		}
		if got := md.Get("x-shoal-instance"); len(got) != 1 || got[0] != "i-0test" {
			t.Errorf("x-shoal-instance header = %v, want [i-0test]", got)
		}
	})
	t.Run("grpc.testing UnaryCall", func(t *testing.T) {
		var md metadata.MD
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := testpb.NewTestServiceClient(h.conn).UnaryCall(ctx, &testpb.SimpleRequest{ResponseSize: 64}, grpc.Header(&md))
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetServerId() != "i-0test" || len(resp.GetPayload().GetBody()) != 64 {
			t.Errorf("UnaryCall = server %q, %d payload bytes; want i-0test and 64", resp.GetServerId(), len(resp.GetPayload().GetBody()))
		}
		if got := md.Get("x-shoal-instance"); len(got) != 1 || got[0] != "i-0test" {
			t.Errorf("x-shoal-instance header = %v, want [i-0test]", got)
		}
		_, err = testpb.NewTestServiceClient(h.conn).UnaryCall(ctx, &testpb.SimpleRequest{ResponseSize: 2 << 20})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("oversized response_size: %v, want INVALID_ARGUMENT", err)
		}
	})
	t.Run("grpc health", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := healthpb.NewHealthClient(h.conn).Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health Check = %v, %v; want SERVING", resp, err)
		}
	})
	t.Run("healthz", func(t *testing.T) {
		resp, body, err := h.get("/healthz")
		if err != nil || resp.StatusCode != http.StatusOK || !strings.Contains(body, "i-0test") {
			t.Fatalf("healthz = %v %q %v", resp, body, err)
		}
	})
}

func TestUtilizationTracksOfferedLoad(t *testing.T) {
	tests := []struct {
		name string
		// offered: concurrent requests fired at once; with capacity 20/s
		// (50 ms each), 40 requests are two seconds of work.
		offered  int
		capacity float64
		check    func(t *testing.T, h *harness)
	}{
		{
			name: "over capacity saturates", offered: 40, capacity: 20,
			check: func(t *testing.T, h *harness) {
				waitFor(t, "demoapp_utilization >= 95", 10*time.Second, func() bool { return h.metric(t, "demoapp_utilization") >= 95 })
				if q := h.metric(t, "demoapp_queue_depth"); q < 1 {
					t.Errorf("queue depth %v while saturated, want >= 1", q)
				}
			},
		},
		{
			name: "light load stays low", offered: 5, capacity: 1000,
			check: func(t *testing.T, h *harness) {
				waitFor(t, "5 requests served", 10*time.Second, func() bool { return h.metric(t, "demoapp_requests_total") >= 5 })
				if u := h.metric(t, "demoapp_utilization"); u > 10 {
					t.Errorf("utilization %v after 5 ms of work in a 500 ms window, want <= 10", u)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := start(t, func(c *Config) { c.Capacity, c.QueueSize, c.UtilWindow = tc.capacity, 100, 500*time.Millisecond })
				var wg sync.WaitGroup
				errs := make(chan error, tc.offered)
				for range tc.offered {
					wg.Go(func() {
						resp, body, err := h.get("/")
						if err == nil && resp.StatusCode != http.StatusOK {
							err = fmt.Errorf("status %d: %s", resp.StatusCode, body)
						}
						errs <- err
					})
				}
				tc.check(t, h)
				wg.Wait()
				close(errs)
				for err := range errs {
					if err != nil {
						t.Errorf("request failed: %v", err)
					}
				}
			})
		})
	}
}

func TestFullQueueRejects(t *testing.T) { synctest.Test(t, testFullQueueRejects) }

func testFullQueueRejects(t *testing.T) {
	// One request per 10 s and no queue: while the first is in service, the
	// next must be turned away, with a reason. The first is abandoned by
	// its client afterwards, so the test does not wait out its slot.
	h := start(t, func(c *Config) { c.Capacity, c.QueueSize = 0.1, 0 })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://demo/", nil)
		resp, err := h.http.Do(req)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		first <- err
	}()
	waitFor(t, "first request in flight", 5*time.Second, func() bool { return h.metric(t, "demoapp_in_flight_requests") >= 1 })

	// Subtests cannot run inside a bubble; both protocols are checked here.
	resp, body, err := h.get("/")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "over capacity") || !strings.Contains(body, "i-0test") {
		t.Errorf("http: got %d %q, want 503 naming the instance and 'over capacity'", resp.StatusCode, body)
	}
	gctx, gcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer gcancel()
	if _, err := h.grpc.SayHello(gctx, &demov1.SayHelloRequest{}); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("grpc: SayHello = %v, want RESOURCE_EXHAUSTED", err)
	}
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("first request = %v, want it still in service until its client left", err)
	}
	// 2 rejected, 1 canceled by its client.
	waitFor(t, "3 requests counted", 5*time.Second, func() bool { return h.metric(t, "demoapp_requests_total") == 3 })
}

func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	synctest.Test(t, testGracefulShutdownFinishesInFlight)
}

func testGracefulShutdownFinishesInFlight(t *testing.T) {
	// 10 requests/s: 10 HTTP and 10 gRPC requests queue for ~2 s, so
	// shutdown starts while most of them are still waiting.
	h := start(t, func(c *Config) { c.Capacity, c.QueueSize, c.ShutdownTimeout = 10, 100, 10*time.Second })
	// Open both connections first, so every request below is admitted
	// quickly and none is still dialling when shutdown starts.
	if resp, _, err := h.get("/"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("warm-up GET: %v %v", resp, err)
	}
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	_, err := h.grpc.SayHello(wctx, &demov1.SayHelloRequest{})
	wcancel()
	if err != nil {
		t.Fatalf("warm-up SayHello: %v", err)
	}
	const n = 10
	const warmups = 2
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	for range n {
		wg.Go(func() {
			resp, body, err := h.get("/")
			if err == nil && (resp.StatusCode != http.StatusOK || !strings.Contains(body, "i-0test")) {
				err = fmt.Errorf("http: status %d: %q", resp.StatusCode, body)
			}
			errs <- err
		})
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := h.grpc.SayHello(ctx, &demov1.SayHelloRequest{})
			if err != nil {
				err = fmt.Errorf("grpc: %w", err)
			}
			errs <- err
		})
	}
	// Every request has reached the server: answered or in flight.
	waitFor(t, "all requests admitted", 5*time.Second, func() bool {
		return h.metric(t, "demoapp_in_flight_requests")+h.metric(t, "demoapp_requests_total")-warmups >= 2*n
	})
	inFlight := h.metric(t, "demoapp_in_flight_requests")
	if inFlight < n {
		t.Fatalf("only %v requests in flight at shutdown; the test needs most of them queued", inFlight)
	}
	h.stop()
	wg.Wait()
	close(errs)
	lost := 0
	for err := range errs {
		if err != nil {
			lost++
			t.Errorf("in-flight request lost: %v", err)
		}
	}
	select {
	case err := <-h.served:
		h.served <- err // for the cleanup
		if err != nil {
			t.Fatalf("Serve returned %v after a graceful shutdown, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after shutdown")
	}
	if lost > 0 {
		t.Fatalf("%d of %d in-flight requests lost", lost, 2*n)
	}
	if _, err := h.ln.DialContext(context.Background()); err == nil {
		t.Error("listener still accepts connections after shutdown")
	}
}

func TestResolveInstanceID(t *testing.T) {
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
			w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", r.Header.Get("X-Aws-Ec2-Metadata-Token-Ttl-Seconds"))
			fmt.Fprint(w, "tok")
		case r.Method == http.MethodGet && r.URL.Path == "/latest/meta-data/instance-id":
			if r.Header.Get("X-Aws-Ec2-Metadata-Token") != "tok" {
				http.Error(w, "no token", http.StatusUnauthorized)
				return
			}
			fmt.Fprint(w, "i-0fromimds")
		default:
			http.NotFound(w, r)
		}
	}))
	defer imds.Close()
	// A closed port: IMDS absent, as on a laptop.
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "http://" + dead.Addr().String()
	dead.Close()

	tests := []struct {
		name       string
		cfg        Config
		wantID     string
		wantSource string
	}{
		{name: "flag wins", cfg: Config{InstanceID: "i-0flag", IMDSEndpoint: imds.URL}, wantID: "i-0flag", wantSource: SourceFlag},
		{name: "imdsv2", cfg: Config{IMDSEndpoint: imds.URL}, wantID: "i-0fromimds", wantSource: SourceIMDS},
		{name: "no imds falls back to hostname", cfg: Config{IMDSEndpoint: deadURL}, wantSource: SourceHostname},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.IMDSTimeout = 2 * time.Second
			got, err := ResolveInstanceID(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got.Source != tc.wantSource || (tc.wantID != "" && got.ID != tc.wantID) || got.ID == "" {
				t.Fatalf("got (%q, %q), want (%q, %q)", got.ID, got.Source, tc.wantID, tc.wantSource)
			}
			if (got.Source == SourceHostname) != (got.IMDSErr != nil) {
				t.Fatalf("IMDSErr = %v with source %s; want a reason exactly when falling back", got.IMDSErr, got.Source)
			}
		})
	}
}
