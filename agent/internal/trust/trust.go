package trust

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"regexp"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/agent/internal/enroll"
	"github.com/shoal-dev/shoal/agent/internal/identity"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// DefaultCAFile is the agent's --ca-cert default, baked into the AMI.
const DefaultCAFile = "/etc/shoal/ca.pem"

// Config of a Client; start from DefaultConfig.
type Config struct {
	// Addrs are the coordinators' agent addresses, tried in turn.
	Addrs []string
	// CAFile is --ca-cert: the CAs that sign the coordinators' certificates.
	CAFile string
	// Cluster is the trust domain of the coordinators and of this agent.
	Cluster string
	// LocalIP, when valid, is the source address of every coordinator
	// connection: the instance's private IP, which enrollment checks.
	LocalIP netip.Addr
	// EnrollTimeout bounds the whole enrollment, retries included.
	EnrollTimeout time.Duration
	// Backoff is the first wait after an unreachable coordinator, doubled
	// up to MaxBackoff, with jitter.
	Backoff, MaxBackoff time.Duration
	// RefusedWait is the wait after a refusal (PermissionDenied): slow, as
	// it changes only when the instance joins a fleet or an operator acts.
	RefusedWait time.Duration
	// RPCTimeout bounds one Enroll or RenewCertificate call.
	RPCTimeout time.Duration
	// RenewRetry is the wait after a failed renewal.
	RenewRetry time.Duration
	// Now and After are the clock; tests inject them.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
	// Metrics counts enrollments and renewals; nil counts nothing.
	Metrics *Metrics
	Logger  *slog.Logger
}

// DefaultConfig enrolls for up to 10 minutes, retrying unreachable
// coordinators from 1 s up to 30 s and refusals every minute.
func DefaultConfig() Config {
	return Config{
		CAFile:        DefaultCAFile,
		Cluster:       tlsconf.DefaultCluster,
		EnrollTimeout: 10 * time.Minute,
		Backoff:       time.Second,
		MaxBackoff:    30 * time.Second,
		RefusedWait:   time.Minute,
		RPCTimeout:    30 * time.Second,
		RenewRetry:    time.Minute,
		Now:           time.Now,
		After:         time.After,
		Logger:        slog.Default(),
	}
}

// Validate names the field (by flag where there is one) and the reason.
func (c Config) Validate() error {
	switch {
	case len(c.Addrs) == 0:
		return errors.New("coordinator: at least one coordinator address is required")
	case c.CAFile == "":
		return errors.New("ca-cert: required (the CA that signs the coordinators' certificates)")
	case c.EnrollTimeout <= 0:
		return fmt.Errorf("enroll timeout (%s): must be positive", c.EnrollTimeout)
	case c.Backoff <= 0 || c.MaxBackoff < c.Backoff:
		return fmt.Errorf("backoff (%s): must be positive and at most max backoff (%s)", c.Backoff, c.MaxBackoff)
	case c.RefusedWait <= 0 || c.RPCTimeout <= 0 || c.RenewRetry <= 0:
		return fmt.Errorf("refused wait (%s), rpc timeout (%s) and renew retry (%s): must be positive", c.RefusedWait, c.RPCTimeout, c.RenewRetry)
	case c.Now == nil || c.After == nil || c.Logger == nil:
		return errors.New("trust: Now, After and Logger are required")
	}
	for i, a := range c.Addrs {
		if a == "" {
			return fmt.Errorf("coordinator[%d]: empty address", i)
		}
	}
	return tlsconf.CheckCluster(c.Cluster)
}

// EvidenceFunc reads the instance identity document and its signature.
type EvidenceFunc func(ctx context.Context) (identity.Evidence, error)

// Client holds the agent's credentials for one instance.
type Client struct {
	cfg      Config
	store    *enroll.Store
	instance string
	evidence EvidenceFunc
	// anon is the CA bundle alone, for enrollment.
	anon *tlsconf.Source
	// src is the bundle and the stored certificate, set by Start.
	src *tlsconf.Source
}

// New returns a Client for instanceID keeping its credentials in store;
// evidence is called only when the agent must enroll.
func New(cfg Config, store *enroll.Store, instanceID string, evidence EvidenceFunc) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if store == nil || evidence == nil {
		return nil, errors.New("trust: store and evidence are required")
	}
	if err := tlsconf.CheckName("instance-id", instanceID); err != nil {
		return nil, err
	}
	anon, err := tlsconf.NewSource(tlsconf.Config{CAFile: cfg.CAFile, Cluster: cfg.Cluster})
	if err != nil {
		return nil, fmt.Errorf("ca-cert: %w", err)
	}
	return &Client{cfg: cfg, store: store, instance: instanceID, evidence: evidence, anon: anon}, nil
}

// Start makes sure a usable certificate is stored, enrolling if it must,
// and loads it. A certificate due for renewal is used, and Run renews it at
// once.
func (c *Client) Start(ctx context.Context) error {
	st, err := c.store.Load()
	switch {
	case errors.Is(err, enroll.ErrNotEnrolled):
	case errors.Is(err, enroll.ErrCorrupt):
		c.cfg.Logger.Warn("stored credentials unusable; enrolling afresh", "data_dir", c.store.Dir(), "err", err)
		st = enroll.State{}
	case err != nil:
		return err
	}
	d := enroll.Decide(st, c.instance, c.cfg.Now())
	c.cfg.Logger.Info("agent credentials", "instance", c.instance, "action", d.Action, "reason", d.Reason)
	if d.Action == enroll.Enroll || d.Action == enroll.Reenroll {
		nonce := st.Nonce
		if d.Action == enroll.Enroll {
			nonce = nil
		}
		if err := c.enroll(ctx, nonce); err != nil {
			return err
		}
	}
	src, err := tlsconf.NewSource(tlsconf.Config{CAFile: c.cfg.CAFile, CertFile: c.store.CredentialsPath(), KeyFile: c.store.CredentialsPath(), Cluster: c.cfg.Cluster})
	if err != nil {
		return fmt.Errorf("data-dir: stored credentials: %w", err)
	}
	c.src = src
	return nil
}

// Source is the bundle and this agent's certificate; nil before Start.
func (c *Client) Source() *tlsconf.Source { return c.src }

// DialOptions are the options of every mutual-TLS coordinator connection:
// the agent certificate as last renewed, bound to LocalIP. Call after Start.
func (c *Client) DialOptions() []grpc.DialOption {
	return []grpc.DialOption{tlsconf.DialOption(tlsconf.ClientConfig(c.src)), BindDialer(c.cfg.LocalIP)}
}

// BindDialer dials TCP from local when it is valid, so the coordinator sees
// the instance's private IP as the connection's peer address.
func BindDialer(local netip.Addr) grpc.DialOption {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if local.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: local.AsSlice()}
	}
	return grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", addr)
	})
}

// enroll runs the Enroll RPC until it succeeds, the deadline passes or ctx
// ends. The key and nonce are stored before the first call, so an answer
// lost in a crash is recovered with the same nonce.
func (c *Client) enroll(ctx context.Context, nonce []byte) error {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.EnrollTimeout)
	defer cancel()
	ev, err := c.evidence(ctx)
	if err != nil {
		return fmt.Errorf("enroll: %w", err)
	}
	if ev.Parsed.InstanceID != c.instance {
		return fmt.Errorf("enroll: the identity document names %q, not this instance %q", ev.Parsed.InstanceID, c.instance)
	}
	req, err := enroll.NewRequest(c.instance, nonce)
	if err != nil {
		return err
	}
	if err := c.store.Save(enroll.State{Key: req.Key, Nonce: req.Nonce}); err != nil {
		return err
	}
	msg := &shoalv1.EnrollRequest{
		IdentityDocument: ev.Document, IdentitySignature: ev.Signature, Nonce: req.Nonce,
		Csr: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: req.CSR}),
	}
	opts := []grpc.DialOption{tlsconf.DialOption(tlsconf.ClientConfig(c.anon)), BindDialer(c.cfg.LocalIP)}
	wait := c.cfg.Backoff
	for attempt := 0; ; attempt++ {
		addr := c.cfg.Addrs[attempt%len(c.cfg.Addrs)]
		resp, err := c.call(ctx, addr, opts, func(ctx context.Context, cl shoalv1.AgentServiceClient) (chainer, error) {
			return cl.Enroll(ctx, msg)
		})
		var chain []*x509.Certificate
		if err == nil {
			chain, err = c.check(resp.GetCertificateChain())
		}
		if err == nil {
			if err := c.store.Save(enroll.State{Key: req.Key, Chain: chain, Nonce: req.Nonce}); err != nil {
				return err
			}
			c.cfg.Metrics.enrolled(resultSuccess)
			c.cfg.Metrics.expires(chain[0])
			c.cfg.Logger.Info("enrolled", "instance", c.instance, "coordinator", addr, "expires", chain[0].NotAfter)
			return nil
		}
		reason := resultOf(err)
		c.cfg.Metrics.enrolled(reason)
		d := wait/2 + rand.N(wait/2+1)
		if reason != resultUnavailable && reason != resultError {
			d = c.cfg.RefusedWait
			c.cfg.Logger.Error("enrollment refused; retrying slowly", "coordinator", addr, "reason", reason, "err", status.Convert(err).Message(), "retry_in", d)
		} else {
			c.cfg.Logger.Warn("enrollment failed; retrying", "coordinator", addr, "err", err, "retry_in", d)
			if (attempt+1)%len(c.cfg.Addrs) == 0 {
				wait = min(2*wait, c.cfg.MaxBackoff)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("enroll: gave up after %d attempts: %w (last error: %w)", attempt+1, ctx.Err(), err)
		case <-c.cfg.After(d):
		}
	}
}

// chainer is what both responses carry.
type chainer interface{ GetCertificateChain() []byte }

// call makes one RPC to addr on a connection of its own.
func (c *Client) call(ctx context.Context, addr string, opts []grpc.DialOption, f func(context.Context, shoalv1.AgentServiceClient) (chainer, error)) (chainer, error) {
	conn, err := rpc.Dial(addr, opts...)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	cctx, cancel := context.WithTimeout(ctx, c.cfg.RPCTimeout)
	defer cancel()
	return f(cctx, shoalv1.NewAgentServiceClient(conn))
}

// check parses an issued chain and makes sure it names this instance's
// agent, of this cluster, and is trusted by the bundle.
func (c *Client) check(chainPEM []byte) ([]*x509.Certificate, error) {
	var chain []*x509.Certificate
	for rest := chainPEM; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%w: issued chain: %w", errBadAnswer, err)
		}
		chain = append(chain, cert)
	}
	if len(chain) == 0 {
		return nil, fmt.Errorf("%w: no certificate in the answer", errBadAnswer)
	}
	id, err := tlsconf.ParseIdentity(chain[0])
	want := tlsconf.Identity{Cluster: c.cfg.Cluster, Role: tlsconf.RoleAgent, Name: c.instance}
	if err != nil || id != want {
		return nil, fmt.Errorf("%w: issued certificate is %v (%v), want %s", errBadAnswer, id, err, want)
	}
	inter := x509.NewCertPool()
	for _, ic := range chain[1:] {
		inter.AddCert(ic)
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: c.anon.Pool(), Intermediates: inter, CurrentTime: chain[0].NotBefore.Add(time.Second),
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return nil, fmt.Errorf("%w: issued certificate not trusted by ca-cert: %w", errBadAnswer, err)
	}
	return chain, nil
}

var errBadAnswer = errors.New("coordinator's answer unusable")

// Results of enrollments and renewals, as metric labels: success, a
// refusal's reason, or one of these.
const (
	resultSuccess     = "success"
	resultUnavailable = "unavailable"
	resultError       = "error"
	resultRefused     = "refused"
)

var refusalRE = regexp.MustCompile(`^(?:enrollment|renewal) refused \(([a-z_]{1,32})\): `)

// resultOf is the label of a failed call: the reason of a refusal, as the
// coordinator names it in its message.
func resultOf(err error) string {
	s := status.Convert(err)
	switch s.Code() {
	case codes.PermissionDenied:
		if m := refusalRE.FindStringSubmatch(s.Message()); m != nil {
			return m[1]
		}
		return resultRefused
	case codes.Unauthenticated, codes.InvalidArgument:
		return resultRefused
	case codes.Unavailable, codes.DeadlineExceeded, codes.Canceled, codes.ResourceExhausted, codes.Aborted:
		return resultUnavailable
	}
	return resultError
}

// certificateOf is the leaf of the Source, or nil.
func certificateOf(src *tlsconf.Source) *x509.Certificate {
	if src == nil {
		return nil
	}
	c := src.Certificate()
	if c == nil {
		return nil
	}
	return c.Leaf
}
