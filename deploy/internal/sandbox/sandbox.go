package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/shoal-dev/shoal/deploy/internal/devpki"
	"github.com/shoal-dev/shoal/deploy/internal/loopback"
	"github.com/shoal-dev/shoal/deploy/internal/pgroup"
)

// Sentinel errors.
var (
	// ErrClosed: the sandbox was closed.
	ErrClosed = errors.New("sandbox closed")
	// ErrLeftBehind: a process survived being killed.
	ErrLeftBehind = pgroup.ErrLeftBehind
	// ErrNoLeader: no live node knows a leader.
	ErrNoLeader = errors.New("no coordinator leader")
)

// Options configure a sandbox; start from DefaultOptions, whose values
// the field comments note.
type Options struct {
	// BinDir holds the binaries (`make build` puts them in bin/). Required.
	BinDir string
	// Dir is the working directory for data and logs (default: a new temp
	// dir, removed by Close unless KeepDir).
	Dir     string
	KeepDir bool
	// Nodes is the coordinator cluster size (default 3).
	Nodes int
	// BootDelay is the local cloud's pending → running time (default 1s):
	// an instance's programs start once it is over.
	BootDelay time.Duration
	// WarmBootDelay is the same for an instance taken from a warm pool
	// (default 1s, the local cloud's).
	WarmBootDelay time.Duration
	// AlarmInterval is the local cloud's alarm evaluation period (default 2s).
	AlarmInterval time.Duration
	// TerminateGrace is the local cloud's SIGTERM → SIGKILL wait for
	// instances (default 2s).
	TerminateGrace time.Duration
	// DrainTimeout, EvalInterval, PublishInterval and AgentGrace are the
	// coordinators' --drain-timeout (10s), --eval-interval (1s),
	// --publish-interval (10s) and --agent-grace (20s).
	DrainTimeout    time.Duration
	EvalInterval    time.Duration
	PublishInterval time.Duration
	AgentGrace      time.Duration
	// AlarmReconcileInterval is the coordinators' --alarm-reconcile-interval
	// (default 2s, so bootstrapped alarms appear quickly).
	AlarmReconcileInterval time.Duration
	// InstanceIPPrefix is the loopback /24 instances get addresses from
	// (default: a random 127.X.Y, so sandboxes running side by side do not
	// collide on the instances' fixed app port).
	InstanceIPPrefix string
	// LogLevel of every process (default warn).
	LogLevel string
	// Ready bounds each readiness wait in Start (default 30s).
	Ready time.Duration
	// CoordinatorBin is the coordinator binary in BinDir (default
	// shoal-coordinator; crash tests use shoal-coordinator-failpoints).
	CoordinatorBin string
	// Failpoint arms SHOAL_FAILPOINT on every node's first start; a
	// RestartNode runs the node without it. It acts only with the
	// failpoints build.
	Failpoint string
	// Prepare, when set, runs once the local cloud is up and every node's
	// addresses are chosen, before any node starts (the chaos harness puts
	// its proxies in front of them then). The environment it returns for a
	// node id is added to that node's at every start, after the sandbox's
	// own, so it may override AWS_ENDPOINT_URL.
	Prepare func(s *Sandbox) (nodeEnv map[string][]string, err error)
	// Insecure runs the system as `--insecure` does: no TLS, no enrollment,
	// no ACLs, the CLI in plaintext. Only for tests of --insecure itself;
	// by default (false) every connection is mutual TLS, agents enroll with
	// the local cloud's signed identity documents, and the CLI carries a
	// token from `acl bootstrap`.
	Insecure bool
	// CoordinatorArgs are appended to every node's serve flags (e.g.
	// --spot-drain-margin).
	CoordinatorArgs []string
	// AgentHTTPPort, when not 0, makes every instance's agent serve its own
	// /metrics on the instance's address at this port (the soak reads its
	// goroutines there). Default 0: off, as in production.
	AgentHTTPPort int
}

// DefaultOptions is a 3-node cluster on a local cloud tuned to react in
// seconds. InstanceIPPrefix is a random 127.X.Y, so sandboxes running side
// by side do not collide on the instances' fixed app port. BinDir has no
// default.
func DefaultOptions() Options {
	return Options{
		Nodes:                  3,
		BootDelay:              time.Second,
		WarmBootDelay:          time.Second,
		AlarmInterval:          2 * time.Second,
		TerminateGrace:         2 * time.Second,
		DrainTimeout:           10 * time.Second,
		EvalInterval:           time.Second,
		PublishInterval:        10 * time.Second,
		AgentGrace:             20 * time.Second,
		AlarmReconcileInterval: 2 * time.Second,
		InstanceIPPrefix:       fmt.Sprintf("127.%d.%d", 2+rand.IntN(250), 1+rand.IntN(250)),
		LogLevel:               "warn",
		Ready:                  30 * time.Second,
		CoordinatorBin:         "shoal-coordinator",
	}
}

// Validate says which option is wrong and why; it changes nothing (it
// only looks for the binaries).
func (o Options) Validate() error {
	if o.AgentHTTPPort < 0 || o.AgentHTTPPort > 65535 || o.AgentHTTPPort == GoldenAppPort {
		return fmt.Errorf("agent http port (%d): must be 0 (off) or a port other than the app's %d", o.AgentHTTPPort, GoldenAppPort)
	}
	switch {
	case o.BinDir == "":
		return errors.New("bin dir: required (the directory `make build` fills, e.g. SHOAL_BIN)")
	case o.Nodes < 1 || o.Nodes > 9:
		return fmt.Errorf("nodes (%d) must be between 1 and 9", o.Nodes)
	case o.AlarmInterval <= 0 || o.AlarmInterval > 10*time.Second:
		return fmt.Errorf("alarm interval (%s) must be > 0 and <= 10s", o.AlarmInterval)
	case o.BootDelay < 0:
		return fmt.Errorf("boot delay (%s) must be >= 0", o.BootDelay)
	case o.WarmBootDelay < 0:
		return fmt.Errorf("warm boot delay (%s) must be >= 0", o.WarmBootDelay)
	case o.TerminateGrace <= 0:
		return fmt.Errorf("terminate grace (%s) must be > 0", o.TerminateGrace)
	case o.DrainTimeout <= 0 || o.EvalInterval <= 0 || o.PublishInterval <= 0 || o.AgentGrace <= 0 || o.AlarmReconcileInterval <= 0:
		return fmt.Errorf("coordinator intervals (drain timeout %s, eval %s, publish %s, agent grace %s, alarm reconcile %s) must all be > 0",
			o.DrainTimeout, o.EvalInterval, o.PublishInterval, o.AgentGrace, o.AlarmReconcileInterval)
	case o.Ready <= 0:
		return fmt.Errorf("ready (%s) must be > 0", o.Ready)
	case o.InstanceIPPrefix == "":
		return errors.New("instance ip prefix: required")
	case o.LogLevel == "":
		return errors.New("log level: required")
	case o.CoordinatorBin == "":
		return errors.New("coordinator bin: required")
	}
	for _, b := range []string{"shoal-localcloud", o.CoordinatorBin, "shoal-lb", "shoal-agent", "shoal-demoapp"} {
		if _, err := os.Stat(filepath.Join(o.BinDir, b)); err != nil {
			return fmt.Errorf("bin dir (%s): %s missing: run `make build`", o.BinDir, b)
		}
	}
	return nil
}

// Node is one coordinator node.
type Node struct {
	ID       string
	RaftAddr string
	RPCAddr  string
	HTTPAddr string
	// AgentAddr is the node's --agent-addr, the listener agents enroll and
	// stream on.
	AgentAddr string
	DataDir   string
	// Cert and Key are the node's server certificate (none when Insecure).
	Cert, Key string
	args      []string
	proc      *Process
	started   int
}

// Alive reports whether the node's process is running.
func (n *Node) Alive() bool { return n.proc != nil && !n.proc.Exited() }

// Sandbox is a running system. Its methods are safe for concurrent use.
type Sandbox struct {
	// Dir holds data/, logs/ (one file per process, instances under
	// logs/instances/) and anything the caller puts there.
	Dir string
	// CloudURL is the local cloud's endpoint (AWS APIs and /_localcloud/).
	CloudURL string
	// LBURL is the load balancer's listener (http://host:port) once StartLB ran.
	LBURL string
	// LBAdminURL serves the LB's /metrics and /healthz.
	LBAdminURL string
	// Golden is the golden instance's id once RunGolden ran.
	Golden string

	opts Options
	env  []string
	// sec is the sandbox's PKI and operator credentials; nil when Insecure.
	sec     *security
	procs   procs
	cloud   *Process
	lb      *Process
	mu      sync.Mutex
	nodes   []*Node
	closed  atomic.Bool
	hc      *http.Client
	tmp     bool
	starter *starter
	nodeEnv map[string][]string
}

// Start brings up the local cloud and the coordinator cluster and returns
// once every node is a member and a leader is elected. On error everything
// started is stopped.
func Start(ctx context.Context, opts Options) (*Sandbox, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	bin, err := filepath.Abs(opts.BinDir)
	if err != nil {
		return nil, fmt.Errorf("bin dir: %w", err)
	}
	opts.BinDir = bin
	s := &Sandbox{opts: opts, hc: &http.Client{Timeout: 5 * time.Second}, starter: newStarter()}
	if opts.Dir == "" {
		d, err := os.MkdirTemp("", "shoal-sandbox-")
		if err != nil {
			return nil, err
		}
		s.Dir, s.tmp = d, !opts.KeepDir
	} else {
		s.Dir = opts.Dir
	}
	for _, d := range []string{"logs/instances", "data/agents"} {
		if err := os.MkdirAll(filepath.Join(s.Dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	cloudAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	s.CloudURL = "http://" + cloudAddr
	s.env = append(awsEnv(s.CloudURL), markerVar+"="+s.Dir)
	if err := s.start(ctx, cloudAddr); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return s, nil
}

func (s *Sandbox) start(ctx context.Context, cloudAddr string) error {
	o := s.opts
	var err error
	if !o.Insecure {
		if s.sec, err = newSecurity(ctx, filepath.Join(o.BinDir, "shoal-coordinator"), filepath.Join(s.Dir, "tls")); err != nil {
			return err
		}
	}
	cloudArgs := []string{"serve",
		"--addr", cloudAddr,
		"--boot-delay", o.BootDelay.String(),
		"--warm-boot-delay", o.WarmBootDelay.String(),
		"--alarm-interval", o.AlarmInterval.String(),
		"--terminate-grace", o.TerminateGrace.String(),
		"--instance-ip-prefix", o.InstanceIPPrefix,
		"--instance-log-dir", filepath.Join(s.Dir, "logs", "instances"),
		"--log-level", o.LogLevel,
	}
	if s.sec != nil {
		cloudArgs = append(cloudArgs, "--iid-cert-out", s.sec.iidCert)
	}
	s.cloud, err = s.Spawn("localcloud", "shoal-localcloud", cloudArgs, nil)
	if err != nil {
		return err
	}
	if err := s.poll(ctx, "local cloud health", func(ctx context.Context) error {
		return s.hook(ctx, http.MethodGet, "/_localcloud/health", nil)
	}); err != nil {
		return err
	}
	// Every node's addresses first, so Prepare sees the whole cluster.
	var nodes []*Node
	for i := range o.Nodes {
		n := &Node{ID: "n" + strconv.Itoa(i+1), DataDir: filepath.Join(s.Dir, "data", "n"+strconv.Itoa(i+1))}
		for _, a := range []*string{&n.RaftAddr, &n.RPCAddr, &n.HTTPAddr, &n.AgentAddr} {
			if *a, err = freeAddr(); err != nil {
				return err
			}
		}
		nodes = append(nodes, n)
	}
	if o.Prepare != nil {
		s.mu.Lock()
		s.nodes = nodes
		s.mu.Unlock()
		env, err := o.Prepare(s)
		if err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		s.mu.Lock()
		s.nodes, s.nodeEnv = nil, env
		s.mu.Unlock()
	}
	for i, n := range nodes {
		n.args = []string{"serve", "--node-id", n.ID, "--data-dir", n.DataDir,
			"--raft-addr", n.RaftAddr, "--rpc-addr", n.RPCAddr, "--http-addr", n.HTTPAddr,
			"--raft-heartbeat-timeout", "400ms", "--raft-election-timeout", "400ms", "--raft-leader-lease-timeout", "200ms",
			"--drain-timeout", o.DrainTimeout.String(), "--agent-grace", o.AgentGrace.String(),
			"--eval-interval", o.EvalInterval.String(), "--publish-interval", o.PublishInterval.String(),
			"--alarm-reconcile-interval", o.AlarmReconcileInterval.String(),
			"--agent-addr", n.AgentAddr,
			"--log-level", o.LogLevel,
		}
		n.args = append(n.args, o.CoordinatorArgs...)
		if s.sec == nil {
			n.args = append(n.args, "--insecure")
		} else {
			pair, err := s.sec.pki.Server(ctx, n.ID)
			if err != nil {
				return err
			}
			n.Cert, n.Key = pair.Cert, pair.Key
			n.args = append(n.args, "--ca-cert", s.sec.pki.CACert, "--cert", n.Cert, "--key", n.Key,
				"--ca-key", s.sec.pki.CAKey, "--iid-trust", s.sec.iidCert)
		}
		if i == 0 {
			n.args = append(n.args, "--bootstrap")
		} else {
			n.args = append(n.args, "--join", nodes[0].RPCAddr)
		}
		s.mu.Lock()
		s.nodes = append(s.nodes, n)
		s.mu.Unlock()
		if err := s.startNode(ctx, n); err != nil {
			return err
		}
	}
	if s.sec != nil {
		if err := s.bootstrapACL(ctx); err != nil {
			return err
		}
	}
	return s.poll(ctx, "every node a member with a leader", func(ctx context.Context) error {
		st, err := s.Status(ctx)
		if err != nil {
			return err
		}
		if st.LeaderID == "" {
			return ErrNoLeader
		}
		if len(st.Nodes) != o.Nodes {
			return fmt.Errorf("%d of %d nodes are members", len(st.Nodes), o.Nodes)
		}
		return nil
	})
}

func (s *Sandbox) startNode(ctx context.Context, n *Node) error {
	var env []string
	if n.started == 0 && s.opts.Failpoint != "" {
		env = []string{"SHOAL_FAILPOINT=" + s.opts.Failpoint}
	}
	s.mu.Lock()
	env = append(env, s.nodeEnv[n.ID]...)
	s.mu.Unlock()
	n.started++
	p, err := s.spawn("coordinator-"+n.ID, s.opts.CoordinatorBin, n.args, nil, env)
	if err != nil {
		return err
	}
	s.mu.Lock()
	n.proc = p
	s.mu.Unlock()
	return s.poll(ctx, n.ID+" /healthz", func(ctx context.Context) error {
		if p.Exited() {
			return s.exitedErr(p)
		}
		return s.httpOK(ctx, "http://"+n.HTTPAddr+"/healthz")
	})
}

// Nodes returns the coordinator nodes (alive or not), n1 first.
func (s *Sandbox) Nodes() []*Node {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Node(nil), s.nodes...)
}

// RPCAddrs returns every node's gRPC address, comma-joinable for --coordinator.
func (s *Sandbox) RPCAddrs() []string {
	var out []string
	for _, n := range s.Nodes() {
		out = append(out, n.RPCAddr)
	}
	return out
}

// Env is the environment every process gets: the caller's minus its AWS_*
// and SHOAL_* credential settings, plus the local cloud's endpoint and
// dummy credentials. The CLI's credentials are in CLIEnv.
func (s *Sandbox) Env() []string { return append([]string(nil), s.env...) }

// AgentAddrs returns every node's agent listener, comma-joinable for the
// shoal:coordinators tag.
func (s *Sandbox) AgentAddrs() []string {
	var out []string
	for _, n := range s.Nodes() {
		out = append(out, n.AgentAddr)
	}
	return out
}

func awsEnv(endpoint string) []string {
	var env []string
	for _, kv := range devpki.Environ() {
		if !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return append(env, "AWS_ENDPOINT_URL="+endpoint, "AWS_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=sandbox", "AWS_SECRET_ACCESS_KEY=sandbox")
}

// Close stops the LB, the coordinators and the local cloud (which
// terminates its instances), then kills any process still carrying this
// sandbox's mark, and returns ErrLeftBehind if one survives that. It is safe
// to call more than once.
func (s *Sandbox) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	var errs []error
	// Everything but the local cloud first (LB, load, coordinators), so no
	// coordinator reacts to instances vanishing; then the cloud.
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, p := range s.procs.all() {
		if p == s.cloud {
			continue
		}
		wg.Go(func() {
			if err := p.Stop(2 * time.Second); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if s.cloud != nil {
		if err := s.cloud.Stop(s.opts.TerminateGrace + 3*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	// Instances run in their own groups; by the mark, not by a remembered
	// group id that someone else's process may have taken since.
	if err := s.killMarked(5 * time.Second); err != nil {
		errs = append(errs, err)
	}
	s.starter.close()
	if s.tmp && len(errs) == 0 {
		_ = os.RemoveAll(s.Dir)
	}
	return errors.Join(errs...)
}

// killMarked SIGKILLs every leftover of this sandbox until none is left.
func (s *Sandbox) killMarked(within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		// Any executable: an instance's /bin/sh init counts too.
		left, err := leftovers("", markerVar+"="+s.Dir)
		if err != nil {
			return err
		}
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %v", ErrLeftBehind, left)
		}
		for _, l := range left {
			_ = syscall.Kill(l.PID, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// poll calls f until it succeeds, ctx ends or opts.Ready passes.
func (s *Sandbox) poll(ctx context.Context, what string, f func(context.Context) error) error {
	return Poll(ctx, s.opts.Ready, what, f)
}

// Poll calls f every 50–500 ms until it returns nil, ctx ends or within
// passes; the error then names what was awaited and f's last error. An
// error wrapped by Final ends the wait at once: no later call can succeed.
func Poll(ctx context.Context, within time.Duration, what string, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, within)
	defer cancel()
	wait := 50 * time.Millisecond
	var last error
	for {
		err := f(ctx)
		if err == nil {
			return nil
		}
		if fe := (finalError{}); errors.As(err, &fe) {
			return fmt.Errorf("waiting for %s: %w", what, fe.err)
		}
		// An attempt the deadline cut short says nothing about the
		// condition; report the last one that ran to its end.
		if last == nil || ctx.Err() == nil {
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w (last: %v)", what, ctx.Err(), last)
		case <-time.After(wait):
		}
		wait = min(wait*2, 500*time.Millisecond)
	}
}

// Final marks an error that ends a Poll at once, such as the process
// awaited having exited.
func Final(err error) error { return finalError{err} }

type finalError struct{ err error }

func (e finalError) Error() string { return e.err.Error() }
func (e finalError) Unwrap() error { return e.err }

func (s *Sandbox) httpOK(ctx context.Context, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}

// hook calls a /_localcloud/ hook and decodes its JSON answer into out.
func (s *Sandbox) hook(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, s.CloudURL+path, nil)
	if err != nil {
		return err
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, strings.TrimSpace(string(body)))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(body, out)
}

// freeAddr returns a loopback address with a port free right now, below
// the kernel's ephemeral range (loopback.Addr says why).
func freeAddr() (string, error) { return loopback.Addr() }
