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
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/lb/internal/balance"
	"github.com/shoal-dev/shoal/lb/internal/coordtls"
	"github.com/shoal-dev/shoal/lb/internal/feed"
	"github.com/shoal-dev/shoal/lb/internal/health"
	"github.com/shoal-dev/shoal/lb/internal/proxy"
)

// serveOpts are serve's flags: most bind straight to the fields of the
// packages' DefaultConfig()s; the rest are turned into config here.
type serveOpts struct {
	pc proxy.Config
	bc balance.Config
	hc health.Config
	fc feed.Config
	tc coordtls.Config

	listen, admin, fleet, lbID, coordinators, backends string
	policy                                             string
	healthPath                                         string
	healthGRPC                                         bool
	backendProtocol                                    string
	backendTLS, backendTLSInsecure                     bool
	backendCA                                          string
	tlsCert, tlsKey                                    string
	shutdownGrace                                      time.Duration
	gcPercent                                          int
}

func newServeCmd(getenv func(string) string) *cobra.Command {
	o := serveOpts{pc: proxy.DefaultConfig(), bc: balance.DefaultConfig(), hc: health.DefaultConfig(), fc: feed.DefaultConfig(), tc: coordtls.DefaultConfig()}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "run the load balancer",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return o.run(cmd.Context()) },
	}
	f := cmd.Flags()
	f.StringVar(&o.listen, "listen", "127.0.0.1:8080", "address serving HTTP/1.1 and h2c (h2 with --tls-cert)")
	f.StringVar(&o.admin, "admin-addr", "", "address serving /metrics, /healthz and /debug/pprof (off when empty)")
	f.StringVar(&o.fleet, "fleet", "", "fleet name (required with --coordinator; names errors in static mode)")
	f.StringVar(&o.lbID, "lb-id", "", "this LB's id in reports (default: the name in --cert, else the listener's host:port)")
	f.StringVar(&o.coordinators, "coordinator", "", "coordinator --rpc-addr list ADDR[,ADDR] for the WatchBackends feed")
	f.StringVar(&o.backends, "backends", "", "static backend list host:port,... (instead of --coordinator)")
	f.StringVar(&o.policy, "policy", "p2c", "p2c, round-robin or least-outstanding")
	f.DurationVar(&o.bc.SlowStart, "slow-start", o.bc.SlowStart, "ramp a new backend's weight up over this long (0: off)")
	f.StringVar(&o.healthPath, "health-path", "", "HTTP health check path (default check: TCP connect)")
	f.BoolVar(&o.healthGRPC, "health-grpc", false, "use the gRPC health protocol for health checks")
	f.DurationVar(&o.hc.Interval, "health-interval", o.hc.Interval, "active health check interval")
	f.DurationVar(&o.hc.Timeout, "health-timeout", o.hc.Timeout, "active health check timeout")
	f.DurationVar(&o.pc.HeaderTimeout, "header-timeout", o.pc.HeaderTimeout, "time a client has to send a request (headers and body) or the h2 preface")
	f.DurationVar(&o.pc.IdleTimeout, "idle-timeout", o.pc.IdleTimeout, "close idle client connections after this long")
	f.DurationVar(&o.pc.ConnectTimeout, "connect-timeout", o.pc.ConnectTimeout, "backend connect timeout")
	f.DurationVar(&o.pc.ResponseHeaderTimeout, "response-header-timeout", o.pc.ResponseHeaderTimeout, "time a backend has to answer (HTTP/1.1 backends: the whole response)")
	f.IntVar(&o.pc.MaxConns, "max-conns", o.pc.MaxConns, "most client connections open at once; more are closed at accept and counted in shoal_lb_connections_refused_total")
	f.IntVar(&o.pc.MaxHeaderBytes, "max-header-bytes", o.pc.MaxHeaderBytes, "largest request header block accepted")
	f.Uint32Var(&o.pc.MaxConcurrentStreams, "max-streams", o.pc.MaxConcurrentStreams, "concurrent streams per h2 client connection")
	f.StringVar(&o.backendProtocol, "backend-protocol", string(o.pc.BackendProtocol), "protocol for non-gRPC requests to backends: http1, h2c or h2")
	f.StringVar(&o.pc.Engine, "h2-engine", o.pc.Engine, "HTTP/2 client engine: mux (frame forwarding; nethttp was removed)")
	f.IntVar(&o.pc.H1Loops, "h1-loops", o.pc.H1Loops, "event loops of --h1-engine loop (0: one per GOMAXPROCS but one, at least one)")
	f.StringVar(&o.pc.H1Engine, "h1-engine", o.pc.H1Engine, "HTTP/1.1 client engine: loop (event loops serve plain-TCP clients and hand bodies, Upgrade and TLS to goroutines; Linux only) or raw (a goroutine per connection; fasthttp was removed)")
	f.BoolVar(&o.backendTLS, "backend-tls", false, "speak TLS (h2) to backends for gRPC and h2")
	f.BoolVar(&o.backendTLSInsecure, "backend-tls-insecure", false, "skip backend certificate verification")
	f.StringVar(&o.backendCA, "backend-ca", "", "PEM file of CAs for backend certificates")
	f.StringVar(&o.tlsCert, "tls-cert", "", "PEM certificate for the listener (enables TLS with ALPN h2/http1.1)")
	f.StringVar(&o.tlsKey, "tls-key", "", "PEM key for --tls-cert")
	f.IntVar(&o.bc.EjectConsecutive, "eject-consecutive", o.bc.EjectConsecutive, "consecutive 5xx/connect failures that eject a backend")
	f.DurationVar(&o.bc.EjectBase, "eject-base", o.bc.EjectBase, "first ejection length (doubles per repeat)")
	f.IntVar(&o.bc.MaxEjectPercent, "max-eject-percent", o.bc.MaxEjectPercent, "most backends ejected at once, percent")
	f.IntVar(&o.bc.RetryBudgetPercent, "retry-budget-percent", o.bc.RetryBudgetPercent, "concurrent retries allowed, percent of active requests")
	f.StringVar(&o.tc.CACert, "ca-cert", "", "PEM bundle of the CAs that sign coordinator certificates (with --coordinator)")
	f.StringVar(&o.tc.Cert, "cert", "", "this LB's certificate for the coordinator connection; role lb (tls cert create --role lb)")
	f.StringVar(&o.tc.Key, "key", "", "key of --cert")
	f.StringVar(&o.tc.Cluster, "cluster", o.tc.Cluster, "cluster (trust domain) of --cert and the coordinators' certificates")
	f.BoolVar(&o.tc.Insecure, "insecure", false, "talk plaintext to the coordinators, without --ca-cert/--cert/--key: development only, warned about every minute")
	f.DurationVar(&o.tc.ReloadInterval, "tls-reload-interval", o.tc.ReloadInterval, "check --ca-cert, --cert and --key for changes this often (SIGHUP reloads at once)")
	f.DurationVar(&o.fc.ReportInterval, "report-interval", o.fc.ReportInterval, "LBReport interval on the coordinator feed")
	gc := 400
	if getenv("GOGC") != "" {
		gc = 0 // the operator's GOGC stands unless the flag is given
	}
	f.IntVar(&o.gcPercent, "gc-percent", gc, "Go GC target (GOGC; 0 leaves the runtime's): the proxy's live heap is small, so a higher value trades a little memory for less GC CPU per request; defaults to 0 when GOGC is set")
	f.DurationVar(&o.shutdownGrace, "shutdown-grace", 10*time.Second, "time requests in flight get to finish on SIGTERM")
	return cmd
}

func (o *serveOpts) configs() (proxy.Config, balance.Config, error) {
	pc := o.pc
	pc.BackendProtocol = proxy.BackendProtocol(o.backendProtocol)
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
	bc := o.bc
	pol, err := balance.ParsePolicy(o.policy)
	if err != nil {
		return pc, bc, err
	}
	bc.Policy = pol
	bc.EjectMax = max(bc.EjectMax, bc.EjectBase)
	if o.fleet != "" {
		bc.Fleet = o.fleet
	}
	if (o.coordinators == "") == (o.backends == "") {
		return pc, bc, errors.New("backends: set exactly one of --coordinator or --backends")
	}
	if o.backends != "" && (o.tc.CACert != "" || o.tc.Cert != "" || o.tc.Key != "" || o.tc.Insecure) {
		return pc, bc, errors.New("ca-cert, cert, key and insecure: only for the --coordinator connection, not with --backends")
	}
	if o.coordinators != "" {
		// Checked here, before anything listens: without TLS material or
		// --insecure the LB must not start at all.
		if err := o.tc.Validate(); err != nil {
			return pc, bc, err
		}
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
	hc := o.hc
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
	extra := []prometheus.Collector{proxy.NewConnCollector(p)} // exported next to the balancer's
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
		tcfg := o.tc
		tcfg.Logger = log
		creds, err := coordtls.New(tcfg)
		if err != nil {
			return err
		}
		id := o.lbID
		cid, tlsOn := creds.Identity()
		if tlsOn {
			log.Info("coordinator connection over TLS", "identity", cid.String(), "ca_cert", tcfg.CACert)
		}
		switch {
		case id != "":
		case tlsOn:
			id = cid.Name // the name the coordinators know this LB by
		default:
			id = ln.Addr().String()
		}
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		go creds.Run(ctx, hup)
		fcfg := o.fc
		fcfg.Addrs, fcfg.Fleet, fcfg.LBID, fcfg.Logger = feed.SplitAddrs(o.coordinators), o.fleet, id, log
		fcfg.DialOptions = append(fcfg.DialOptions, creds.DialOption())
		fc, err := feed.New(fcfg, bal)
		if err != nil {
			return err
		}
		go fc.Run(ctx)
		extra = append(extra, fc)
	}
	if runHealth {
		hc, err := health.New(o.healthConfig(), bal)
		if err != nil {
			return err
		}
		go hc.Run(ctx)
	}
	if o.admin != "" {
		if err := serveAdmin(ctx, o.admin, bal, extra...); err != nil {
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

func serveAdmin(ctx context.Context, addr string, bal *balance.Balancer, extra ...prometheus.Collector) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(proxy.NewCollector(bal), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(extra...)
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
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute}
	go srv.Serve(ln)
	go func() { <-ctx.Done(); srv.Close() }()
	return nil
}
