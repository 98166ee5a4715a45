package feed

import (
	"strings"
	"testing"
	"time"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// switchLead is a Leadership whose changes a test makes and announces like
// cluster.Node does, keeping only the newest value.
type switchLead struct {
	leader bool
	ch     chan bool
}

func (l *switchLead) IsLeader() bool        { return l.leader }
func (l *switchLead) LeaderRPCAddr() string { return "" }
func (l *switchLead) Subscribe() (<-chan bool, func()) {
	return l.ch, func() {}
}
func (l *switchLead) set(v bool) {
	l.leader = v
	select {
	case <-l.ch:
	default:
	}
	l.ch <- v
}

// graceRig drives the service's session bookkeeping directly with an
// injected clock: the streams themselves are covered by the tests that
// dial, and these need exact times.
type graceRig struct {
	t    *testing.T
	clk  *clock
	w    *world
	lead *switchLead
	svc  *Service
	sess map[string]*session
}

const grace = 10 * time.Second

func newGraceRig(t *testing.T) *graceRig {
	clk := &clock{t: time.Unix(1_700_000_000, 0)}
	w := newWorld()
	l := &switchLead{leader: true, ch: make(chan bool, 1)}
	svc := mustNew(t, configWith(func(c *Config) {
		c.Now = clk.Now
		c.LeaseTTL = 5 * time.Second
		c.ReconnectGrace = grace
	}), w.get, l, nil)
	return &graceRig{t: t, clk: clk, w: w, lead: l, svc: svc, sess: map[string]*session{}}
}

// connect opens lb's stream and sends it the current set, as one
// WatchBackends poll does.
func (r *graceRig) connect(lb string) {
	sess := r.svc.open(&shoalv1.LBHello{LbId: lb, Fleet: "web"})
	r.sess[lb] = sess
	r.poll(lb)
}

func (r *graceRig) poll(lb string) uint64 {
	set, _, err := r.svc.current(r.sess[lb])
	if err != nil {
		r.t.Fatal(err)
	}
	return set.Version
}

// report has lb report i-b in state st with n in flight, at the newest
// version it was sent.
func (r *graceRig) report(lb string, st shoalv1.BackendState, n uint32) {
	v := r.poll(lb)
	r.svc.record(r.sess[lb], &shoalv1.LBReport{ReportTime: tsms(r.clk.Now().UnixMilli()), Version: v, Backends: []*shoalv1.BackendLoad{{InstanceId: "i-b", State: st, InFlight: n}}})
}

func (r *graceRig) drained(want bool, why string) {
	r.t.Helper()
	ok, got := r.svc.Drained("web", "i-b")
	if ok != want || !strings.Contains(got, why) {
		r.t.Fatalf("Drained = %v %q, want %v containing %q", ok, got, want, why)
	}
}

const (
	active   = shoalv1.BackendState_BACKEND_STATE_ACTIVE
	draining = shoalv1.BackendState_BACKEND_STATE_DRAINING
)

func TestDrainAfterLeaderChange(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(r *graceRig)
	}{
		{"no LB: held for the grace, then drained", func(r *graceRig) {
			r.w.setState("web", "i-b", draining)
			r.drained(false, "leader since 0s: waiting for LBs to reconnect")
			r.clk.Add(grace - time.Second)
			r.drained(false, "leader since 9s")
			r.clk.Add(time.Second)
			r.drained(true, "")
		}},
		{"an LB that reports idle releases before the grace", func(r *graceRig) {
			r.w.setState("web", "i-b", draining)
			r.clk.Add(time.Second)
			r.connect("lb1")
			r.drained(false, "leader since 1s")
			r.report("lb1", draining, 0)
			r.drained(true, "")
		}},
		{"an LB that reports busy holds by the normal rule", func(r *graceRig) {
			r.w.setState("web", "i-b", draining)
			r.connect("lb1")
			r.report("lb1", draining, 2)
			r.drained(false, "lb1: 2 in flight")
		}},
		{"a report from the earlier term does not count", func(r *graceRig) {
			r.w.setState("web", "i-b", draining)
			r.connect("lb1")
			r.report("lb1", draining, 0)
			r.drained(true, "")
			r.lead.set(false)
			r.drained(false, "not the leader")
			r.clk.Add(time.Second)
			r.lead.set(true)
			r.drained(false, "leader since 0s")
		}},
		{"a lost and regained leadership seen only by its announcement", func(r *graceRig) {
			r.w.setState("web", "i-b", draining)
			r.clk.Add(grace)
			r.drained(true, "")
			// Between two looks the node lost and won leadership: only the
			// coalesced announcement tells.
			r.lead.set(false)
			r.lead.set(true)
			r.clk.Add(time.Second)
			r.drained(false, "leader since 0s")
			r.clk.Add(grace)
			r.drained(true, "")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(newGraceRig(t)) })
	}
}

func TestReconnectingLBHoldsDrain(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(r *graceRig)
	}{
		{"held until it returns and reports idle", func(r *graceRig) {
			r.connect("lb1")
			r.connect("lb2")
			r.report("lb1", active, 0)
			r.report("lb2", active, 0)
			r.w.setState("web", "i-b", draining)
			r.report("lb1", draining, 0)
			r.svc.disconnect(r.sess["lb2"])
			// Within its lease the LB's last report, which predates the
			// drain, holds it by the normal rule.
			r.drained(false, "lb2: not yet told")
			r.clk.Add(6 * time.Second)
			r.report("lb1", draining, 0)
			r.drained(false, "waiting on LB lb2 to reconnect (gone 6s)")
			r.connect("lb2")
			r.drained(false, "lb2: no report since it was told")
			r.report("lb2", draining, 0)
			r.drained(true, "")
		}},
		{"released once gone longer than the grace", func(r *graceRig) {
			r.connect("lb1")
			r.connect("lb2")
			r.report("lb1", active, 0)
			r.report("lb2", active, 0)
			r.w.setState("web", "i-b", draining)
			r.report("lb1", draining, 0)
			r.svc.disconnect(r.sess["lb2"])
			r.clk.Add(grace)
			r.report("lb1", draining, 0)
			r.drained(false, "waiting on LB lb2 to reconnect (gone 10s)")
			r.clk.Add(time.Second)
			r.report("lb1", draining, 0)
			r.drained(true, "")
			if got := r.svc.LiveLBs("web"); len(got) != 1 || got[0] != "lb1" {
				t.Fatalf("live LBs = %v, want [lb1]", got)
			}
		}},
		{"an old stream ending after the new one opened does not count as gone", func(r *graceRig) {
			r.connect("lb1")
			old := r.sess["lb1"]
			r.connect("lb1") // the reconnect, before the old stream is seen to end
			r.svc.disconnect(old)
			r.w.setState("web", "i-b", draining)
			r.report("lb1", draining, 0)
			r.clk.Add(grace + time.Second)
			r.report("lb1", draining, 0)
			r.drained(true, "")
			if r.sess["lb1"].streams != 1 {
				t.Fatalf("streams = %d, want 1", r.sess["lb1"].streams)
			}
		}},
		{"a live LB that reports idle releases at once", func(r *graceRig) {
			r.clk.Add(grace)
			r.connect("lb1")
			r.w.setState("web", "i-b", draining)
			r.drained(false, "lb1: not yet told")
			r.report("lb1", draining, 0)
			r.drained(true, "")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.run(newGraceRig(t)) })
	}
}
