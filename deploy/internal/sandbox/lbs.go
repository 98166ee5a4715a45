package sandbox

import (
	"context"
	"fmt"
	"strings"
)

// StartFleetLB starts one more shoal-lb in front of fleet, fed by every
// coordinator node like StartLB's, logged as logs/<name>.log and reporting
// as lb id name, and waits for its /healthz. It returns its listener and
// admin URLs and leaves LBURL alone: the demo's side-by-side run puts a
// second fleet behind a load balancer of its own.
//
// It repeats StartLB's few lines rather than reshaping StartLB, which
// other changes use as it is.
func (s *Sandbox) StartFleetLB(ctx context.Context, name, fleet string, extra ...string) (lbURL, adminURL string, err error) {
	if name == "" || name == "lb" {
		return "", "", fmt.Errorf("start fleet lb: name (%q) must be set and differ from StartLB's \"lb\"", name)
	}
	listen, err := freeAddr()
	if err != nil {
		return "", "", err
	}
	admin, err := freeAddr()
	if err != nil {
		return "", "", err
	}
	args := append([]string{"serve", "--listen", listen, "--admin-addr", admin, "--lb-id", name,
		"--coordinator", strings.Join(s.RPCAddrs(), ","), "--fleet", fleet,
		"--health-path", "/healthz", "--health-interval", "1s", "--health-timeout", "500ms", "--log-level", s.opts.LogLevel}, s.lbTLSFlags()...)
	p, err := s.Spawn(name, "shoal-lb", append(args, extra...), nil)
	if err != nil {
		return "", "", err
	}
	err = s.poll(ctx, name+" /healthz", func(ctx context.Context) error {
		if p.Exited() {
			return s.exitedErr(p)
		}
		return s.httpOK(ctx, "http://"+admin+"/healthz")
	})
	return "http://" + listen, "http://" + admin, err
}
