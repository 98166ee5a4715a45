package coordtls

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// Config names the LB's TLS material for its coordinator connection. Flags
// bind to its fields.
type Config struct {
	// CACert is the bundle of CAs that sign coordinator certificates
	// (--ca-cert).
	CACert string
	// Cert and Key are this LB's certificate, of role lb, and its key
	// (--cert, --key).
	Cert, Key string
	// Cluster is the trust domain: the LB's certificate and the
	// coordinators' must be of it (--cluster).
	Cluster string
	// Insecure dials plaintext, for development only (--insecure). It
	// excludes every file above.
	Insecure bool
	// ReloadInterval is how often the files are checked for a change
	// (--tls-reload-interval); SIGHUP reloads at once.
	ReloadInterval time.Duration
	// WarnInterval is how often an insecure LB repeats its warning.
	WarnInterval time.Duration
	Logger       *slog.Logger
}

// DefaultConfig returns the defaults; the files have none.
func DefaultConfig() Config {
	return Config{
		Cluster:        tlsconf.DefaultCluster,
		ReloadInterval: time.Minute,
		WarnInterval:   time.Minute,
		Logger:         slog.Default(),
	}
}

// Validate reports the first bad field by its flag name and the reason. It
// only checks; it does not read the files.
func (c Config) Validate() error {
	if c.Insecure {
		for _, f := range []struct{ flag, v string }{{"ca-cert", c.CACert}, {"cert", c.Cert}, {"key", c.Key}} {
			if f.v != "" {
				return fmt.Errorf("insecure: plaintext cannot be combined with --%s", f.flag)
			}
		}
	} else {
		for _, f := range []struct{ flag, v string }{{"ca-cert", c.CACert}, {"cert", c.Cert}, {"key", c.Key}} {
			if f.v == "" {
				return fmt.Errorf("%s: required for the coordinator connection (or --insecure, plaintext, for development only)", f.flag)
			}
		}
		if err := tlsconf.CheckCluster(c.Cluster); err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
	}
	switch {
	case c.ReloadInterval <= 0:
		return fmt.Errorf("tls-reload-interval (%s): must be > 0", c.ReloadInterval)
	case c.WarnInterval <= 0:
		return fmt.Errorf("warn interval (%s): must be > 0", c.WarnInterval)
	case c.Logger == nil:
		return errors.New("logger: must be set")
	}
	return nil
}

// Creds are the LB's coordinator credentials.
type Creds struct {
	cfg Config
	src *tlsconf.Source // nil when insecure
}

// New validates cfg, loads the files and checks that the certificate is an
// LB's: a coordinator would refuse any other role on WatchBackends, and
// saying so at start beats a loop of denied streams.
func New(cfg Config) (*Creds, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Creds{cfg: cfg}
	if cfg.Insecure {
		return c, nil
	}
	tc := tlsconf.DefaultConfig()
	tc.CAFile, tc.CertFile, tc.KeyFile, tc.Cluster = cfg.CACert, cfg.Cert, cfg.Key, cfg.Cluster
	src, err := tlsconf.NewSource(tc)
	if err != nil {
		return nil, flagNames(err)
	}
	id, ok := src.Identity()
	if !ok {
		return nil, errors.New("cert: required for the coordinator connection")
	}
	if id.Role != tlsconf.RoleLB {
		return nil, fmt.Errorf("cert (%s): %s is a %s certificate; shoal-lb needs one of role %s (tls cert create --role %s)", cfg.Cert, id, id.Role, tlsconf.RoleLB, tlsconf.RoleLB)
	}
	c.src = src
	return c, nil
}

// flagNames renames tlsconf's field names in err to shoal-lb's flags, so
// the line names the flag to fix; errors.Is still sees through it.
func flagNames(err error) error {
	return renamed{msg: flagReplacer.Replace(err.Error()), err: err}
}

var flagReplacer = strings.NewReplacer("ca-file", "ca-cert", "cert-file", "cert", "key-file", "key")

type renamed struct {
	msg string
	err error
}

func (r renamed) Error() string { return r.msg }
func (r renamed) Unwrap() error { return r.err }

// Insecure reports whether the connection is plaintext.
func (c *Creds) Insecure() bool { return c.src == nil }

// Identity is the LB's identity; ok is false when insecure.
func (c *Creds) Identity() (tlsconf.Identity, bool) {
	if c.src == nil {
		return tlsconf.Identity{}, false
	}
	return c.src.Identity()
}

// Source is the TLS source, nil when insecure.
func (c *Creds) Source() *tlsconf.Source { return c.src }

// DialOption is the transport credentials of every coordinator
// connection. Each handshake reads the certificate as last loaded, so one
// option serves across reloads: new connections use the new certificate,
// live streams keep theirs.
func (c *Creds) DialOption() grpc.DialOption {
	if c.src == nil {
		return grpc.WithTransportCredentials(insecure.NewCredentials())
	}
	return tlsconf.DialOption(tlsconf.ClientConfig(c.src))
}

// Reload reads the files again; on error the previous ones stay in use.
func (c *Creds) Reload() error {
	if c.src == nil {
		return nil
	}
	if err := c.src.Reload(); err != nil {
		return flagNames(err)
	}
	return nil
}

// Run keeps the credentials fresh until ctx ends: it reloads on every value
// from hup (SIGHUP in the binary) and whenever the files change, and logs
// each result. An insecure LB instead warns now and every WarnInterval.
func (c *Creds) Run(ctx context.Context, hup <-chan os.Signal) {
	log := c.cfg.Logger
	if c.src == nil {
		warn := func() {
			log.Warn("coordinator connection is PLAINTEXT (--insecure): anyone on the path can read and forge backend sets; development only")
		}
		warn()
		t := time.NewTicker(c.cfg.WarnInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				warn()
			case <-hup:
			}
		}
	}
	report := func(how string) func(error) {
		return func(err error) {
			if err != nil {
				log.Error("coordinator TLS reload failed; keeping the previous certificate", "trigger", how, "err", flagNames(err))
				return
			}
			log.Info("coordinator TLS material reloaded", "trigger", how, "serial", c.serial(), "not_after", c.notAfter())
		}
	}
	go c.src.Watch(ctx, c.cfg.ReloadInterval, report("file change"))
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			report("SIGHUP")(c.Reload())
		}
	}
}

func (c *Creds) serial() string {
	if cert := c.src.Certificate(); cert != nil && cert.Leaf != nil {
		return cert.Leaf.SerialNumber.String()
	}
	return ""
}

func (c *Creds) notAfter() time.Time {
	if cert := c.src.Certificate(); cert != nil && cert.Leaf != nil {
		return cert.Leaf.NotAfter
	}
	return time.Time{}
}
