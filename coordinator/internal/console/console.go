package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/coordinator/internal/acl"
	"github.com/shoal-dev/shoal/coordinator/internal/authz"
	"github.com/shoal-dev/shoal/coordinator/internal/view"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

//go:embed assets
var assets embed.FS

// Authorize decides one console request standing for an operator method
// (acl.FullMethod of ControlService): the context to call the server with,
// or a gRPC status error. authorization is the Authorization header.
type Authorize func(ctx context.Context, fullMethod, authorization string) (context.Context, error)

// Local is what only the serving node knows: who it is and whom it
// follows.
type Local interface {
	NodeID() string
	IsLeader() bool
	LeaderID() string
}

// Config configures the console.
type Config struct {
	// API is the node's ControlService; reads and writes go through it, so
	// they are forwarded to the leader and authorized as the CLI's are.
	API       shoalv1.ControlServiceServer
	Authorize Authorize
	Local     Local
	// ReadAs returns the context the shared producers read with (the
	// node's own identity); nil reads with the context as it is.
	ReadAs func(context.Context) context.Context
	// Insecure is the node's --insecure: no tokens, and a banner says so.
	Insecure bool
	// Every is how often a watched page's event is rebuilt (1 s).
	Every time.Duration
	// Linger keeps a fleet's chart history this long after its last viewer
	// leaves, so a reopened page shows it (15 min).
	Linger time.Duration
	// MaxStreams bounds the event streams open at once on this node.
	MaxStreams int
	Logger     *slog.Logger
	Now        func() time.Time
}

// DefaultConfig is one event a second and a 15-minute chart.
func DefaultConfig() Config {
	return Config{Every: time.Second, Linger: HistoryLen * time.Second, MaxStreams: 256, Now: time.Now}
}

// Validate names the first wrong field.
func (c Config) Validate() error {
	switch {
	case c.API == nil:
		return errors.New("console: API: required")
	case c.Authorize == nil:
		return errors.New("console: Authorize: required")
	case c.Local == nil:
		return errors.New("console: Local: required")
	case c.Every <= 0:
		return fmt.Errorf("console: every (%v) must be > 0", c.Every)
	case c.Linger < 0:
		return fmt.Errorf("console: linger (%v) must be >= 0", c.Linger)
	case c.MaxStreams <= 0:
		return fmt.Errorf("console: max streams (%d) must be > 0", c.MaxStreams)
	case c.Now == nil:
		return errors.New("console: Now: required")
	}
	return nil
}

// Console serves /ui/.
type Console struct {
	cfg  Config
	log  *slog.Logger
	hub  *hub
	mux  *http.ServeMux
	slot chan struct{}
}

// New builds the console; Close stops its producers.
func New(cfg Config) (*Console, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Console{cfg: cfg, log: cfg.Logger, slot: make(chan struct{}, cfg.MaxStreams)}
	c.hub = newHub(c)
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, err
	}
	files := http.FileServerFS(static)
	m := http.NewServeMux()
	m.HandleFunc("GET /ui/{$}", c.index)
	m.Handle("GET /ui/assets/", http.StripPrefix("/ui/assets/", files))
	m.HandleFunc("GET /ui/api/v1/whoami", c.whoami)
	m.HandleFunc("GET /ui/api/v1/cluster/events", c.stream(func(*http.Request) (string, string) { return topicCluster, "GetStatus" }))
	m.HandleFunc("GET /ui/api/v1/fleets/events", c.stream(func(*http.Request) (string, string) { return topicFleets, "ListFleets" }))
	m.HandleFunc("GET /ui/api/v1/fleets/{name}/events", c.stream(func(r *http.Request) (string, string) {
		return topicFleet + r.PathValue("name"), "GetFleet"
	}))
	m.HandleFunc("GET /ui/api/v1/lbs/events", c.stream(func(*http.Request) (string, string) { return topicLBs, "ListInstances" }))
	m.HandleFunc("POST /ui/api/v1/fleets/{name}/{action}", c.act)
	c.mux = m
	return c, nil
}

// Close stops every producer and ends the open streams.
func (c *Console) Close() { c.hub.close() }

// ServeHTTP serves /ui/ with the console's security headers.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	SecurityHeaders(w.Header())
	c.mux.ServeHTTP(w, r)
}

// CSP is the console's Content-Security-Policy: only this origin's own
// script, style and connections; no inline code, no frames, no forms.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// SecurityHeaders sets the headers every response of --http-addr carries.
func SecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
}

func (c *Console) index(w http.ResponseWriter, r *http.Request) {
	b, err := assets.ReadFile("assets/index.html")
	if err != nil {
		http.Error(w, "console: index missing from the binary", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(b)
}

// authorize checks the request's token for method; on refusal it writes
// the status and returns ok false.
func (c *Console) authorize(w http.ResponseWriter, r *http.Request, method string) (context.Context, bool) {
	ctx, err := c.cfg.Authorize(r.Context(), acl.FullMethod(acl.ControlService, method), r.Header.Get("Authorization"))
	if err != nil {
		writeError(w, err)
		return nil, false
	}
	return ctx, true
}

// writeError writes a gRPC status error as HTTP with its message.
func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch status.Code(err) {
	case codes.Unauthenticated:
		code = http.StatusUnauthorized
	case codes.PermissionDenied:
		code = http.StatusForbidden
	case codes.InvalidArgument, codes.FailedPrecondition:
		code = http.StatusBadRequest
	case codes.NotFound:
		code = http.StatusNotFound
	case codes.Unavailable, codes.Aborted:
		code = http.StatusServiceUnavailable
	case codes.DeadlineExceeded:
		code = http.StatusGatewayTimeout
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	fmt.Fprintln(w, status.Convert(err).Message())
}

// whoami says what the token may do, so the page shows write buttons only
// to operate tokens. Without ACLs (insecure) everyone may.
func (c *Console) whoami(w http.ResponseWriter, r *http.Request) {
	ctx, ok := c.authorize(w, r, "ListFleets")
	if !ok {
		return
	}
	// Asking the authorizer about ScaleFleet would count a refusal for
	// every read token that opens a page; the caller's policy says it.
	operate := c.cfg.Insecure
	if caller, ok := authz.CallerFrom(ctx); ok {
		operate = caller.Policy.Covers(acl.PolicyOperate)
	}
	writeJSON(w, view.ConsoleWho{Node: c.cfg.Local.NodeID(), Insecure: c.cfg.Insecure, CanOperate: operate})
}
