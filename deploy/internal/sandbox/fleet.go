package sandbox

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Bootstrap is a `fleet bootstrap` request. Zero values take the defaults
// noted.
type Bootstrap struct {
	Fleet string // default "web"
	// Instance to bake the image from (default: the golden instance).
	Instance string
	// Subnets (default: the first two of the default VPC).
	Subnets []string
	Min     int     // default 2
	Max     int     // default 6
	Metric  string  // default "util" (demoapp_utilization)
	Target  float64 // default 50
	// ScaleInWindow is the policy's scale-in stabilisation (default 15s).
	ScaleInWindow time.Duration
	// HookHeartbeat is the TERMINATING hook's timeout (default 30s).
	HookHeartbeat time.Duration
	// Extra flags passed as they are. The shoal:coordinators tag defaults
	// to the members' agent listeners (`fleet bootstrap`'s own default).
	Extra []string
}

// Bootstrap runs `shoal-coordinator fleet bootstrap` and returns its JSON
// output (what it made, each with its id).
func (s *Sandbox) Bootstrap(ctx context.Context, b Bootstrap) ([]byte, error) {
	if b.Fleet == "" {
		b.Fleet = "web"
	}
	if b.Instance == "" {
		s.mu.Lock()
		b.Instance = s.Golden
		s.mu.Unlock()
		if b.Instance == "" {
			return nil, fmt.Errorf("bootstrap: instance: required (or RunGolden first)")
		}
	}
	if len(b.Subnets) == 0 {
		sn, err := s.Subnets(ctx)
		if err != nil {
			return nil, err
		}
		b.Subnets = sn[:min(2, len(sn))]
	}
	if b.Min == 0 {
		b.Min = 2
	}
	if b.Max == 0 {
		b.Max = 6
	}
	if b.Metric == "" {
		b.Metric = "util"
	}
	if b.Target == 0 {
		b.Target = 50
	}
	if b.ScaleInWindow == 0 {
		b.ScaleInWindow = 15 * time.Second
	}
	if b.HookHeartbeat == 0 {
		b.HookHeartbeat = 30 * time.Second
	}
	args := []string{"--timeout", "3m", "fleet", "bootstrap", b.Fleet,
		"--from-instance", b.Instance, "--subnets", strings.Join(b.Subnets, ","),
		"--min", strconv.Itoa(b.Min), "--max", strconv.Itoa(b.Max),
		"--metric", b.Metric, "--target", strconv.FormatFloat(b.Target, 'f', -1, 64),
		"--app-port", strconv.Itoa(GoldenAppPort), "--scale-in-window", b.ScaleInWindow.String(),
		"--hook-heartbeat", b.HookHeartbeat.String(),
	}
	return s.CLI(ctx, append(args, b.Extra...)...)
}

// StartLB starts shoal-lb in front of fleet, fed by every coordinator node,
// with extra flags appended, and waits for its /healthz. It sets LBURL and
// LBAdminURL.
func (s *Sandbox) StartLB(ctx context.Context, fleet string, extra ...string) error {
	return s.StartLBAt(ctx, fleet, s.RPCAddrs(), extra...)
}

// StartLBAt is StartLB fed by the coordinators at addrs (the chaos harness
// passes its proxies).
func (s *Sandbox) StartLBAt(ctx context.Context, fleet string, addrs []string, extra ...string) error {
	listen, err := freeAddr()
	if err != nil {
		return err
	}
	admin, err := freeAddr()
	if err != nil {
		return err
	}
	args := append([]string{"serve", "--listen", listen, "--admin-addr", admin,
		"--coordinator", strings.Join(addrs, ","), "--fleet", fleet,
		"--health-path", "/healthz", "--health-interval", "1s", "--health-timeout", "500ms", "--log-level", s.opts.LogLevel}, s.lbTLSFlags()...)
	args = append(args, extra...)
	p, err := s.Spawn("lb", "shoal-lb", args, nil)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.lb = p
	s.LBURL, s.LBAdminURL = "http://"+listen, "http://"+admin
	s.mu.Unlock()
	return s.poll(ctx, "shoal-lb /healthz", func(ctx context.Context) error {
		if p.Exited() {
			return s.exitedErr(p)
		}
		return s.httpOK(ctx, "http://"+admin+"/healthz")
	})
}

// lbTLSFlags are shoal-lb's flags for its coordinator connection: the CA
// and its lb certificate, or --insecure.
func (s *Sandbox) lbTLSFlags() []string {
	if s.sec == nil {
		return []string{"--insecure"}
	}
	return []string{"--ca-cert", s.sec.pki.CACert, "--cert", s.sec.lb.Cert, "--key", s.sec.lb.Key}
}
