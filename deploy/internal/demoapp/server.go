package demoapp

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	demov1 "github.com/shoal-dev/shoal/proto/gen/shoal/demo/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
)

// InstanceHeader names the answering instance on every HTTP response; gRPC
// calls carry the same value in the lower-case header metadata key.
const InstanceHeader = "X-Shoal-Instance"

// ErrOverCapacity is returned when the request queue is full.
var ErrOverCapacity = errors.New("over capacity")

// Server is one demoapp instance: HTTP/1.1, h2c and gRPC on one listener.
type Server struct {
	cfg      Config
	id       string
	model    *Model
	draining atomic.Bool

	httpSrv *http.Server
	grpcSrv *grpc.Server
	health  *health.Server

	inFlight  prometheus.Gauge
	requests  *prometheus.CounterVec
	queueWait prometheus.Histogram
	registry  *prometheus.Registry
}

// New builds a server for instanceID from cfg (start from DefaultConfig).
func New(cfg Config, instanceID string) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if instanceID == "" {
		return nil, fmt.Errorf("%w: instance id must not be empty", ErrConfig)
	}
	s := &Server{cfg: cfg, id: instanceID, model: NewModel(cfg.Capacity, cfg.QueueSize, cfg.UtilWindow)}
	s.registerMetrics()

	s.grpcSrv = rpc.NewServer()
	demov1.RegisterGreeterServiceServer(s.grpcSrv, greeter{s: s})
	// `shoal-lb loadtest --grpc` speaks grpc.testing.TestService/UnaryCall,
	// so the demo's gRPC load reaches the same capacity model.
	testpb.RegisterTestServiceServer(s.grpcSrv, testService{s: s})
	s.health = health.NewServer()
	healthpb.RegisterHealthServer(s.grpcSrv, s.health)

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("/", s.greetHTTP)
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	s.httpSrv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ProtoMajor == 2 && strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc") {
				s.grpcSrv.ServeHTTP(w, r)
				return
			}
			mux.ServeHTTP(w, r)
		}),
		Protocols:         &protocols,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	return s, nil
}

// InstanceID is the id this server answers with.
func (s *Server) InstanceID() string { return s.id }

// Handler is the server's HTTP handler (HTTP, h2c gRPC, /metrics, /healthz).
func (s *Server) Handler() http.Handler { return s.httpSrv.Handler }

// Serve serves on ln until ctx is done, then shuts down gracefully: health
// turns to draining, the listener closes, and every in-flight request (HTTP
// or gRPC) finishes within ShutdownTimeout.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	errc := make(chan error, 1)
	go func() { errc <- s.httpSrv.Serve(ln) }()
	s.cfg.Logger.Info("demoapp serving", "addr", ln.Addr().String(), "instance", s.id,
		"capacity_rps", s.cfg.Capacity, "queue", s.cfg.QueueSize, "work", s.cfg.Work)
	select {
	case err := <-errc:
		s.grpcSrv.Stop()
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	s.draining.Store(true)
	s.health.Shutdown()
	s.cfg.Logger.Info("demoapp shutting down; finishing in-flight requests", "timeout", s.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	err := s.httpSrv.Shutdown(sctx)
	s.grpcSrv.Stop()
	if err != nil {
		_ = s.httpSrv.Close()
		return fmt.Errorf("shutdown: in-flight requests did not finish within %s: %w", s.cfg.ShutdownTimeout, err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	}
	s.cfg.Logger.Info("demoapp stopped")
	return nil
}

func (s *Server) registerMetrics() {
	s.registry = prometheus.NewRegistry()
	s.inFlight = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "demoapp_in_flight_requests", Help: "Requests admitted and not yet answered, queued ones included.",
	})
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "demoapp_requests_total",
		Help: "Requests by protocol (http, grpc) and outcome (ok, rejected: queue full, canceled: client left while queued).",
	}, []string{"protocol", "outcome"})
	s.queueWait = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "demoapp_queue_wait_seconds",
		Help:    "Time served requests waited for capacity.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
	})
	capacity := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "demoapp_capacity_requests_per_second", Help: "Modelled capacity (--capacity).",
	})
	capacity.Set(s.cfg.Capacity)
	s.registry.MustRegister(s.inFlight, s.requests, s.queueWait, capacity,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "demoapp_utilization",
			Help: "Share of the last --util-window the modelled server was busy, 0-100. 100 means requests are queuing.",
		}, func() float64 { return s.model.Utilization(s.cfg.Clock.Now()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "demoapp_queue_depth", Help: "Requests waiting for capacity.",
		}, func() float64 { return float64(s.model.Queued(s.cfg.Clock.Now())) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	for _, p := range []string{"http", "grpc"} {
		for _, o := range []string{"ok", "rejected", "canceled"} {
			s.requests.WithLabelValues(p, o)
		}
	}
}

// admit runs one request through the capacity model: wait for the booked
// slot, burn the configured CPU, and hold until the slot's service time has
// passed. It returns how long the request queued.
func (s *Server) admit(ctx context.Context, protocol string) (time.Duration, error) {
	s.inFlight.Inc()
	defer s.inFlight.Dec()
	now := s.cfg.Clock.Now()
	start, ok := s.model.Reserve(now)
	if !ok {
		s.requests.WithLabelValues(protocol, "rejected").Inc()
		return 0, fmt.Errorf("%w: %d requests queued (queue size %d, capacity %g/s)", ErrOverCapacity, s.model.Queued(now), s.cfg.QueueSize, s.cfg.Capacity)
	}
	wait := start.Sub(now)
	if err := sleepCtx(ctx, wait); err != nil {
		s.requests.WithLabelValues(protocol, "canceled").Inc()
		return wait, err
	}
	burn(s.cfg.Work)
	if err := sleepCtx(ctx, start.Add(s.model.Service()).Sub(s.cfg.Clock.Now())); err != nil {
		s.requests.WithLabelValues(protocol, "canceled").Inc()
		return wait, err
	}
	s.queueWait.Observe(wait.Seconds())
	s.requests.WithLabelValues(protocol, "ok").Inc()
	return wait, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// burn spends about d of real CPU, the little that each request costs.
func burn(d time.Duration) {
	if d <= 0 {
		return
	}
	var sum [sha256.Size]byte
	for t0 := time.Now(); time.Since(t0) < d; {
		sum = sha256.Sum256(sum[:])
	}
	sink.Store(&sum)
}

// sink keeps burn's result alive so the compiler cannot drop the loop.
var sink atomic.Pointer[[sha256.Size]byte]

func (s *Server) greetHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(InstanceHeader, s.id)
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
	wait, err := s.admit(r.Context(), "http")
	switch {
	case errors.Is(err, ErrOverCapacity):
		w.Header().Set("Retry-After", "1")
		http.Error(w, fmt.Sprintf("demoapp %s: %v", s.id, err), http.StatusServiceUnavailable)
		return
	case err != nil:
		// The client left; nobody reads an answer.
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "hello from %s (queued %.1f ms)\n", s.id, float64(wait)/float64(time.Millisecond))
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set(InstanceHeader, s.id)
	if s.draining.Load() {
		http.Error(w, "draining "+s.id, http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintf(w, "ok %s\n", s.id)
}

type greeter struct {
	demov1.UnimplementedGreeterServiceServer
	s *Server
}

func (g greeter) SayHello(ctx context.Context, req *demov1.SayHelloRequest) (*demov1.SayHelloResponse, error) {
	_ = grpc.SetHeader(ctx, metadata.Pairs(strings.ToLower(InstanceHeader), g.s.id))
	wait, err := g.s.admit(ctx, "grpc")
	switch {
	case errors.Is(err, ErrOverCapacity):
		return nil, status.Errorf(codes.ResourceExhausted, "demoapp %s: %v", g.s.id, err)
	case err != nil:
		return nil, status.FromContextError(err).Err()
	}
	name := req.GetName()
	if name == "" {
		name = "world"
	}
	return &demov1.SayHelloResponse{
		Message:    "hello " + name + " from " + g.s.id,
		InstanceId: g.s.id,
		QueuedMs:   float64(wait) / float64(time.Millisecond),
	}, nil
}

// maxPayload bounds the response a TestService caller may ask for.
const maxPayload = 1 << 20

type testService struct {
	testpb.UnimplementedTestServiceServer
	s *Server
}

func (ts testService) UnaryCall(ctx context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	_ = grpc.SetHeader(ctx, metadata.Pairs(strings.ToLower(InstanceHeader), ts.s.id))
	size := req.GetResponseSize()
	if size < 0 || size > maxPayload {
		return nil, status.Errorf(codes.InvalidArgument, "response_size (%d) must be within 0..%d", size, maxPayload)
	}
	_, err := ts.s.admit(ctx, "grpc")
	switch {
	case errors.Is(err, ErrOverCapacity):
		return nil, status.Errorf(codes.ResourceExhausted, "demoapp %s: %v", ts.s.id, err)
	case err != nil:
		return nil, status.FromContextError(err).Err()
	}
	return &testpb.SimpleResponse{
		ServerId: ts.s.id,
		Hostname: ts.s.id,
		Payload:  &testpb.Payload{Body: make([]byte, size)},
	}, nil
}
