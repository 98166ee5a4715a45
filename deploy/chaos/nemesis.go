package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shoal-dev/shoal/deploy/internal/sandbox"
)

// Fault is one fault as it happened: report.json's faults[].
type Fault struct {
	Kind   string  `json:"kind"`
	Target string  `json:"target"`
	StartS float64 `json:"start_s"`
	EndS   float64 `json:"end_s"`
	// Variant is the step's flavour (isolate-leader, drop_response, ...).
	Variant string `json:"variant,omitempty"`
}

// nemesis carries out a script's steps against a running system.
type nemesis struct {
	sb   *sandbox.Sandbox
	w    *wiring
	t0   time.Time
	hc   *http.Client
	logf func(format string, args ...any)

	mu     sync.Mutex
	faults []Fault
	// down are nodes the nemesis stopped on purpose (kill), which the
	// supervisor must not restart; sick are nodes with a disk fault.
	down, sick map[string]bool
}

func newNemesis(sb *sandbox.Sandbox, w *wiring, t0 time.Time, logf func(string, ...any)) *nemesis {
	return &nemesis{sb: sb, w: w, t0: t0, hc: &http.Client{Timeout: 5 * time.Second}, logf: logf,
		down: map[string]bool{}, sick: map[string]bool{}}
}

func (m *nemesis) since() float64 { return time.Since(m.t0).Seconds() }

// run executes the steps at their times; a step that cannot start (no
// leader known, say) is logged and skipped, and never ends the run.
func (m *nemesis) run(ctx context.Context, s Script) {
	for _, st := range s.Steps {
		if err := sleepCtx(ctx, time.Until(m.t0.Add(st.At))); err != nil {
			return
		}
		start := m.since()
		target, heal, err := m.start(ctx, st)
		if err != nil {
			m.logf("nemesis: %s %s at %.1fs: %v", st.Kind, st.Variant, start, err)
			continue
		}
		m.logf("nemesis: %s %s on %s at %.1fs for %s", st.Kind, st.Variant, target, start, st.For)
		_ = sleepCtx(ctx, st.For)
		// Heal even when ctx ended, so the checks see a whole system.
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		if err := heal(hctx); err != nil {
			m.logf("nemesis: healing %s %s on %s: %v", st.Kind, st.Variant, target, err)
		}
		cancel()
		m.mu.Lock()
		m.faults = append(m.faults, Fault{Kind: st.Kind, Target: target, StartS: start, EndS: m.since(), Variant: st.Variant})
		m.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
	}
}

func (m *nemesis) recorded() []Fault {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Fault(nil), m.faults...)
}

type healFunc func(context.Context) error

// start begins step st and returns its target and how to end it.
func (m *nemesis) start(ctx context.Context, st Step) (string, healFunc, error) {
	nodes := m.sb.Nodes()
	pick := func(cands []*sandbox.Node) *sandbox.Node { return cands[st.Pick%uint64(len(cands))] }
	leader := func() (*sandbox.Node, error) {
		lctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return m.sb.Leader(lctx)
	}
	net := m.w.net
	healNet := func(context.Context) error { net.Heal(); return nil }
	switch st.Kind {
	case KindPartition:
		switch st.Variant {
		case "isolate-leader":
			l, err := leader()
			if err != nil {
				return "", nil, err
			}
			net.Isolate(l.ID)
			return l.ID, healNet, nil
		case "halves":
			ids := nodeIDs(nodes)
			// A rotation drawn by Pick, cut at the minority's size.
			k := int(st.Pick % uint64(len(ids)))
			rot := append(append([]string(nil), ids[k:]...), ids[:k]...)
			cut := len(ids) / 2
			if err := net.Partition(rot[:cut], rot[cut:]); err != nil {
				return "", nil, err
			}
			return strings.Join(rot[:cut], "+") + "|" + strings.Join(rot[cut:], "+"), healNet, nil
		case "one-way":
			// The leader still hears a follower, which no longer hears it:
			// the follower calls an election the leader learns of.
			l, err := leader()
			if err != nil {
				return "", nil, err
			}
			f := pick(others(nodes, l))
			net.OneWay(l.ID, f.ID)
			return l.ID + "->" + f.ID, healNet, nil
		case "slow-links":
			// 100–600 ms each way between every pair of nodes: heartbeats
			// arrive around the 400 ms election timeout.
			d := time.Duration(100+st.Pick%500) * time.Millisecond
			ids := nodeIDs(nodes)
			for i, a := range ids {
				for _, b := range ids[i+1:] {
					net.SetLatency(a, b, d)
				}
			}
			return fmt.Sprintf("all nodes +%s", d), healNet, nil
		case "flapping":
			l, err := leader()
			if err != nil {
				return "", nil, err
			}
			fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
			done := make(chan struct{})
			go func() {
				defer close(done)
				on := false
				for i := uint64(0); fctx.Err() == nil; i++ {
					if on = !on; on {
						net.Isolate(l.ID)
					} else {
						net.Heal()
					}
					// 300–1100 ms per phase, from Pick: around the election
					// timeout, so elections start and abort.
					_ = sleepCtx(fctx, time.Duration(300+(st.Pick>>(i%32))%800)*time.Millisecond)
				}
			}()
			return l.ID + " (flapping)", func(context.Context) error { cancel(); <-done; net.Heal(); return nil }, nil
		}
	case KindKill:
		var n *sandbox.Node
		if st.Variant == "leader" {
			l, err := leader()
			if err != nil {
				return "", nil, err
			}
			n = l
		} else {
			l, err := leader()
			if err != nil {
				return "", nil, err
			}
			n = pick(others(nodes, l))
		}
		m.mu.Lock()
		m.down[n.ID] = true
		m.mu.Unlock()
		if err := m.sb.KillNode(n); err != nil {
			return "", nil, err
		}
		return n.ID, func(ctx context.Context) error {
			defer func() { m.mu.Lock(); delete(m.down, n.ID); m.mu.Unlock() }()
			if n.Alive() {
				return nil
			}
			return m.sb.RestartNode(ctx, n)
		}, nil
	case KindPause:
		l, err := leader()
		if err != nil {
			return "", nil, err
		}
		if err := m.sb.SignalNode(l, syscall.SIGSTOP); err != nil {
			return "", nil, err
		}
		return l.ID, func(context.Context) error { return m.sb.SignalNode(l, syscall.SIGCONT) }, nil
	case KindCloudFault:
		f := cloudFault{Op: "*", Service: "autoscaling", Kind: st.Variant}
		switch st.Variant {
		case "latency":
			f.LatencyMS = 1500
		case "drop_response":
			// The scaler's own calls: applied, answer lost.
			f.Op, f.Count = "SetDesiredCapacity", 2
		}
		if err := m.cloudFault(ctx, http.MethodPost, &f); err != nil {
			return "", nil, err
		}
		return "autoscaling:" + f.Op, func(ctx context.Context) error { return m.cloudFault(ctx, http.MethodDelete, nil) }, nil
	case KindDiskFull:
		// A follower, so a detected fault does not also cost a leader.
		l, err := leader()
		if err != nil {
			return "", nil, err
		}
		n := pick(others(nodes, l))
		m.mu.Lock()
		m.sick[n.ID] = true
		m.mu.Unlock()
		if err := m.w.setDisk(n.ID, st.Variant); err != nil {
			return "", nil, err
		}
		if st.Variant == "corrupt-read" {
			// A running follower seldom reads its log; a restart replays
			// it, so the flipped bytes are read. The node must refuse to
			// start (naming the file) or come up with the right state; a
			// node that exits stays down until the fault ends, and the
			// supervisor starts it again.
			if err := m.sb.KillNode(n); err != nil {
				return "", nil, err
			}
			// Bounded short: a node that detects the damage exits at once,
			// and the sandbox's wait would otherwise sit out its whole
			// readiness bound on a process that is gone.
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if err := m.sb.RestartNode(rctx, n); err != nil {
				m.logf("nemesis: %s with corrupt reads did not start: %v", n.ID, err)
			}
			cancel()
		}
		return n.ID + ":" + st.Variant, func(ctx context.Context) error {
			err := m.w.setDisk(n.ID, "")
			m.mu.Lock()
			delete(m.sick, n.ID)
			m.mu.Unlock()
			return err
		}, nil
	case KindDisconnect:
		ep := EndpointAgents
		if st.Variant == "lb" {
			ep = EndpointLB
		}
		cut := 0
		for _, n := range nodes {
			cut += net.Disconnect(ep, n.ID)
		}
		return fmt.Sprintf("%s (%d connections)", ep, cut), func(context.Context) error { return nil }, nil
	}
	return "", nil, fmt.Errorf("unknown step %s %s", st.Kind, st.Variant)
}

// supervise restarts, as systemd would after a second, any node that
// exited on its own (a detected disk fault ends the process) once its disk
// is healthy again; nodes the nemesis killed wait for their step's end.
func (m *nemesis) supervise(ctx context.Context) {
	for ctx.Err() == nil {
		_ = sleepCtx(ctx, time.Second)
		for _, n := range m.sb.Nodes() {
			m.mu.Lock()
			skip := m.down[n.ID] || m.sick[n.ID]
			m.mu.Unlock()
			if skip || n.Alive() || ctx.Err() != nil {
				continue
			}
			m.logf("supervisor: %s exited on its own at %.1fs; restarting it", n.ID, m.since())
			rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			if err := m.sb.RestartNode(rctx, n); err != nil {
				m.logf("supervisor: restart %s: %v", n.ID, err)
			}
			cancel()
		}
	}
}

// cloudFault is the local cloud's fault API body (POST /_localcloud/faults/api).
type cloudFault struct {
	Op        string `json:"op"`
	Service   string `json:"service"`
	Kind      string `json:"kind"`
	Count     int    `json:"count"`
	LatencyMS int    `json:"latency_ms,omitempty"`
}

func (m *nemesis) cloudFault(ctx context.Context, method string, f *cloudFault) error {
	var body io.Reader
	if f != nil {
		b, err := json.Marshal(f)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, m.sb.CloudURL+"/_localcloud/faults/api", body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := m.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s /_localcloud/faults/api: %s: %s", method, resp.Status, bytes.TrimSpace(msg))
	}
	return nil
}

func nodeIDs(nodes []*sandbox.Node) []string {
	var ids []string
	for _, n := range nodes {
		ids = append(ids, n.ID)
	}
	sort.Strings(ids)
	return ids
}

func others(nodes []*sandbox.Node, not *sandbox.Node) []*sandbox.Node {
	var out []*sandbox.Node
	for _, n := range nodes {
		if n.ID != not.ID {
			out = append(out, n)
		}
	}
	return out
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
