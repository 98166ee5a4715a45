package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/lb/internal/balance"
	"github.com/shoal-dev/shoal/lb/internal/feed"
	"github.com/shoal-dev/shoal/lb/internal/health"
	"github.com/shoal-dev/shoal/lb/internal/proxy"
)

type serveOpts struct {
	listen, admin, fleet, lbID, coordinators, backends string
	policy                                             string
	slowStart                                          time.Duration
	healthPath                                         string
	healthGRPC                                         bool
	healthInterval, healthTimeout                      time.Duration
	headerTimeout, idleTimeout                         time.Duration
	connectTimeout, respHeaderTimeout                  time.Duration
	maxHeaderBytes                                     int
	maxStreams                                         uint32
	backendProtocol, engine, h1engine                  string
	backendTLS, backendTLSInsecure                     bool
	backendCA                                          string
	tlsCert, tlsKey                                    string
	ejectConsecutive, maxEjectPercent, retryBudget     int
	ejectBase                                          time.Duration
	reportInterval, shutdownGrace                      time.Duration
	gcPercent                                          int
}

func newServeCmd(getenv func(string) string) *cobra.Command {
	o := serveOpts{}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "run the load balancer",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return o.run(cmd.Context()) },
	}
	f := cmd.Flags()
	pd, bd, hd := proxy.DefaultConfig(), balance.DefaultConfig(), health.DefaultConfig()
	f.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address serving HTTP/1.1 and h2c (h2 with --tls-cert)")
	f.StringVar(&o.admin, "admin-addr", "", "address serving /metrics, /healthz and /debug/pprof (off when empty)")
	f.StringVar(&o.fleet, "fleet", "", "fleet name (required with --coordinator; names errors in static mode)")
	f.StringVar(&o.lbID, "lb-id", "", "this LB's id in reports (default: the listener's host:port)")
	f.StringVar(&o.coordinators, "coordinator", "", "coordinator --rpc-addr list ADDR[,ADDR] for the WatchBackends feed")
	f.StringVar(&o.backends, "backends", "", "static backend list host:port,... (instead of --coordinator)")
	f.StringVar(&o.policy, "policy", "p2c", "p2c, round-robin or least-outstanding")
	f.DurationVar(&o.slowStart, "slow-start", 0, "ramp a new backend's weight up over this long (0: off)")
	f.StringVar(&o.healthPath, "health-path", "", "HTTP health check path (default check: TCP connect)")
	f.BoolVar(&o.healthGRPC, "health-grpc", false, "use the gRPC health protocol for health checks")
	f.DurationVar(&o.healthInterval, "health-interval", hd.Interval, "active health check interval")
	f.DurationVar(&o.healthTimeout, "health-timeout", hd.Timeout, "active health check timeout")
	f.DurationVar(&o.headerTimeout, "header-timeout", pd.HeaderTimeout, "time a client has to send a request (headers and body) or the h2 preface")
	f.DurationVar(&o.idleTimeout, "idle-timeout", pd.IdleTimeout, "close idle client connections after this long")
	f.DurationVar(&o.connectTimeout, "connect-timeout", pd.ConnectTimeout, "backend connect timeout")
	f.DurationVar(&o.respHeaderTimeout, "response-header-timeout", pd.ResponseHeaderTimeout, "time a backend has to answer (HTTP/1.1 backends: the whole response)")
	f.IntVar(&o.maxHeaderBytes, "max-header-bytes", pd.MaxHeaderBytes, "largest request header block accepted")
	f.Uint32Var(&o.maxStreams, "max-streams", pd.MaxConcurrentStreams, "concurrent streams per h2 client connection")
	f.StringVar(&o.backendProtocol, "backend-protocol", "http1", "protocol for non-gRPC requests to backends: http1, h2c or h2")
	f.StringVar(&o.engine, "h2-engine", pd.Engine, "HTTP/2 client engine: mux (frame forwarding; nethttp was removed)")
	f.StringVar(&o.h1engine, "h1-engine", pd.H1Engine, "HTTP/1.1 client engine: raw (head/body copying; fasthttp was removed)")
	f.BoolVar(&o.backendTLS, "backend-tls", false, "speak TLS (h2) to backends for gRPC and h2")
	f.BoolVar(&o.backendTLSInsecure, "backend-tls-insecure", false, "skip backend certificate verification")
	f.StringVar(&o.backendCA, "backend-ca", "", "PEM file of CAs for backend certificates")
	f.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate for the listener (enables TLS with ALPN h2/http1.1)")
	f.StringVar(&o.tlsKey, "tls-key", "", "PEM key for --tls-cert")
	f.IntVar(&o.ejectConsecutive, "eject-consecutive", bd.EjectConsecutive, "consecutive 5xx/connect failures that eject a backend")
	f.DurationVar(&o.ejectBase, "eject-base", bd.EjectBase, "first ejection length (doubles per repeat)")
	f.IntVar(&o.maxEjectPercent, "max-eject-percent", bd.MaxEjectPercent, "most backends ejected at once, percent")
	f.IntVar(&o.retryBudget, "retry-budget-percent", bd.RetryBudgetPercent, "concurrent retries allowed, percent of active requests")
	f.DurationVar(&o.reportInterval, "report-interval", feed.DefaultConfig().ReportInterval, "LBReport interval on the coordinator feed")
	gc := 400
	if getenv("GOGC") != "" {
		gc = 0 // the operator's GOGC stands unless the flag is given
	}
	f.IntVar(&o.gcPercent, "gc-percent", gc, "Go GC target (GOGC; 0 leaves the runtime's): the proxy's live heap is small, so a higher value trades a little memory for less GC CPU per request; defaults to 0 when GOGC is set")
	f.DurationVar(&o.shutdownGrace, "shutdown-grace", 10*time.Second, "time requests in flight get to finish on SIGTERM")
	return cmd
}

func (o *serveOpts) configs() (proxy.Config, balance.Config, error) {
	pc := proxy.DefaultConfig()
	pc.HeaderTimeout, pc.IdleTimeout = o.headerTimeout, o.idleTimeout
	pc.ConnectTimeout, pc.ResponseHeaderTimeout = o.connectTimeout, o.respHeaderTimeout
	pc.MaxHeaderBytes, pc.MaxConcurrentStreams = o.maxHeaderBytes, o.maxStreams
	pc.BackendProtocol = proxy.BackendProtocol(o.backendProtocol)
	pc.Engine, pc.H1Engine = o.engine, o.h1engine
	pc.Logger = slog.Default()
	if o.backendTLS || pc.BackendProtocol == proxy.H2 {
		tc := &tls.Config{InsecureSkipVerify: o.backendTLSInsecure}
		if o.backendCA != "" {
			pem, err := os.ReadFile(o.backendCA)
			if err != nil {
				return pc, balance.Config{}, fmt.Errorf("backend-ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return pc, balance.Config{}, fmt.Errorf("backend-ca (%s): no PEM certificates found", o.backendCA)
			}
			tc.RootCAs = pool
		}
		pc.BackendTLS = tc
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return pc, balance.Config{}, errors.New("tls-cert and tls-key: set both or neither")
	}
	if o.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(o.tlsCert, o.tlsKey)
		if err != nil {
			return pc, balance.Config{}, fmt.Errorf("tls-cert/tls-key: %w", err)
		}
		pc.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	bc := balance.DefaultConfig()
	pol, err := balance.ParsePolicy(o.policy)
	if err != nil {
		return pc, bc, err
	}
	bc.Policy, bc.SlowStart = pol, o.slowStart
	bc.EjectConsecutive, bc.EjectBase = o.ejectConsecutive, o.ejectBase
	bc.EjectMax = max(bc.EjectMax, o.ejectBase)
	bc.MaxEjectPercent, bc.RetryBudgetPercent = o.maxEjectPercent, o.retryBudget
	if o.fleet != "" {
		bc.Fleet = o.fleet
	}
	if (o.coordinators == "") == (o.backends == "") {
		return pc, bc, errors.New("backends: set exactly one of --coordinator or --backends")
	}
	if o.healthPath != "" && o.healthGRPC {
		return pc, bc, errors.New("health-path and health-grpc: choose one")
	}
	if err := pc.Validate(); err != nil {
		return pc, bc, err
	}
	return pc, bc, bc.Validate()
}

func (o *serveOpts) healthConfig() health.Config {
	hc := health.DefaultConfig()
	hc.Interval, hc.Timeout = o.healthInterval, o.healthTimeout
	switch {
	case o.healthPath != "":
		hc.Mode, hc.Path = health.HTTP, o.healthPath
	case o.healthGRPC:
		hc.Mode = health.GRPC
	}
	return hc
}

func (o *serveOpts) run(ctx context.Context) error {
	pc, bc, err := o.configs()
	if err != nil {
		return err
	}
	if o.gcPercent != 0 {
		debug.SetGCPercent(o.gcPercent)
	}
	p, err := proxy.New(pc, bc)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	defer ln.Close()
	log := slog.Default()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	bal := p.Balancer()
	runHealth := o.backends != "" || o.healthPath != "" || o.healthGRPC
	if o.backends != "" {
		var specs []balance.Spec
		for _, a := range feed.SplitAddrs(o.backends) {
			if _, _, err := net.SplitHostPort(a); err != nil {
				return fmt.Errorf("backends: %q: %w", a, err)
			}
			specs = append(specs, balance.Spec{Addr: a, State: balance.Active})
		}
		if err := bal.Update(1, specs); err != nil {
			return fmt.Errorf("backends: %w", err)
		}
	} else {
		id := o.lbID
		if id == "" {
			id = ln.Addr().String()
		}
		fcfg := feed.DefaultConfig()
		fcfg.Addrs, fcfg.Fleet, fcfg.LBID = feed.SplitAddrs(o.coordinators), o.fleet, id
		fcfg.ReportInterval, fcfg.Logger = o.reportInterval, log
		fc, err := feed.New(fcfg, bal)
		if err != nil {
			return err
		}
		go fc.Run(ctx)
	}
	if runHealth {
		hc, err := health.New(o.healthConfig(), bal)
		if err != nil {
			return err
		}
		go hc.Run(ctx)
	}
	if o.admin != "" {
		if err := serveAdmin(ctx, o.admin, bal); err != nil {
			return err
		}
	}
	log.Info("shoal-lb serving", "listen", ln.Addr().String(), "fleet", bc.Fleet, "policy", bc.Policy.String(), "tls", pc.TLS != nil)
	errc := make(chan error, 1)
	go func() { errc <- p.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, scancel := context.WithTimeout(context.Background(), o.shutdownGrace)
	defer scancel()
	return p.Shutdown(sctx)
}

func serveAdmin(ctx context.Context, addr string, bal *balance.Balancer) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(proxy.NewCollector(bal), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("admin-addr: %w", err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	go func() { <-ctx.Done(); srv.Close() }()
	return nil
}
