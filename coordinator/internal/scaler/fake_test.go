package scaler

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// store runs a real FSM without raft, stamping commands with the clock as
// the leader does.
type store struct {
	mu    sync.Mutex
	f     *fsm.FSM
	clk   *clock
	index uint64
	// applies counts commands by op, to check what reached the log
	// (refused ones included).
	applies map[fsm.Op]int
	// refuse, when set, fails the commands it returns an error for, as a
	// lost leadership does, before they reach the FSM.
	refuse func(fsm.Command) error
}

func newStore(clk *clock) *store { return &store{f: fsm.New(), clk: clk, applies: map[fsm.Op]int{}} }

func (s *store) Fleets() []*shoalv1.Fleet                   { return s.f.Fleets() }
func (s *store) Instances(fleet string) []*shoalv1.Instance { return s.f.Instances(fleet) }
func (s *store) Decisions(fleet string, limit int) ([]*shoalv1.Decision, error) {
	return s.f.Decisions(fleet, limit)
}

func (s *store) LaunchSamples(fleet string) map[string][]time.Duration {
	return s.f.LaunchSamples(fleet)
}

func (s *store) Apply(_ context.Context, cmd fsm.Command) (*fsm.Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := fsm.Stamp(cmd.Encode(), s.clk.Now())
	if err != nil {
		return nil, err
	}
	s.applies[cmd.Op]++
	if s.refuse != nil {
		if err := s.refuse(cmd); err != nil {
			return nil, err
		}
	}
	s.index++
	return s.f.ApplyBytes(s.index, b), nil
}

func (s *store) must(cmd fsm.Command) *fsm.Result {
	r, err := s.Apply(context.Background(), cmd)
	if err == nil {
		err = r.Error()
	}
	if err != nil {
		panic(err)
	}
	return r
}

// fakeCloud models Auto Scaling groups just enough for the scaler: desired
// capacity launches or removes instances at once, the TERMINATING hook holds
// terminated instances in Terminating:Wait until completed.
type fakeCloud struct {
	mu         sync.Mutex
	groups     map[string]*cloud.Group
	hooks      map[string][]cloud.LifecycleHook
	activities map[string][]cloud.Activity
	refresh    map[string]*cloud.InstanceRefresh
	next       int
	// failSet makes SetDesiredCapacity fail with it.
	failSet error
	// afterDescribe, when set, runs after DescribeGroups read the groups,
	// outside the lock: a test changes the world under a tick's view with it.
	afterDescribe func()
	// terminated, when set, gets a value (never blocking) per
	// TerminateInstance call.
	terminated chan struct{}
	// describes counts DescribeGroups calls: one per tick.
	describes int
	calls     []string
}

func newFakeCloud() *fakeCloud {
	return &fakeCloud{groups: map[string]*cloud.Group{}, hooks: map[string][]cloud.LifecycleHook{}, activities: map[string][]cloud.Activity{}, refresh: map[string]*cloud.InstanceRefresh{}}
}

var _ cloud.Scaling = (*fakeCloud)(nil)

var azs = []string{"us-east-1a", "us-east-1b", "us-east-1c"}

func (c *fakeCloud) addGroup(name string, min, max, desired int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.groups[name] = &cloud.Group{Name: name, Min: min, Max: max}
	c.resizeLocked(c.groups[name], desired)
}

// resizeLocked launches or removes instances to reach desired, keeping AZs
// balanced as Auto Scaling does.
func (c *fakeCloud) resizeLocked(g *cloud.Group, desired int32) {
	g.Desired = desired
	live := func() (n int32) {
		for _, in := range g.Instances {
			if in.LifecycleState == cloud.LifecycleInService {
				n++
			}
		}
		return n
	}
	for live() < desired {
		count := map[string]int{}
		for _, in := range g.Instances {
			count[in.AZ]++
		}
		az := azs[0]
		for _, a := range azs {
			if count[a] < count[az] {
				az = a
			}
		}
		c.next++
		g.Instances = append(g.Instances, cloud.Instance{ID: fmt.Sprintf("i-%017x", c.next), AZ: az, LifecycleState: cloud.LifecycleInService, Health: cloud.HealthHealthy})
	}
}

func (c *fakeCloud) record(call string) { c.calls = append(c.calls, call) }

func (c *fakeCloud) Calls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.calls...)
}

func (c *fakeCloud) group(name string) cloud.Group {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := *c.groups[name]
	g.Instances = append([]cloud.Instance(nil), g.Instances...)
	return g
}

func (c *fakeCloud) DescribeGroups(_ context.Context, names []string) ([]cloud.Group, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.describes++
	var out []cloud.Group
	for _, n := range names {
		if g, ok := c.groups[n]; ok {
			cp := *g
			cp.Instances = append([]cloud.Instance(nil), g.Instances...)
			out = append(out, cp)
		}
	}
	after := c.afterDescribe
	c.mu.Unlock()
	if after != nil {
		after()
	}
	c.mu.Lock()
	return out, nil
}

func (c *fakeCloud) SetDesiredCapacity(_ context.Context, group string, desired int32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.record(fmt.Sprintf("SetDesiredCapacity %s %d", group, desired))
	if c.failSet != nil {
		return c.failSet
	}
	g, ok := c.groups[group]
	if !ok {
		return &cloud.Error{Op: "autoscaling:SetDesiredCapacity", Kind: cloud.ErrGroupNotFound, Err: fmt.Errorf("no group %s", group)}
	}
	c.resizeLocked(g, desired)
	return nil
}

func (c *fakeCloud) hasHookLocked(group string) bool {
	for _, h := range c.hooks[group] {
		if h.Transition == cloud.TransitionTerminating {
			return true
		}
	}
	return false
}

func (c *fakeCloud) TerminateInstance(_ context.Context, id string, decrement bool) (cloud.Activity, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.record(fmt.Sprintf("TerminateInstance %s %v", id, decrement))
	if c.terminated != nil {
		select {
		case c.terminated <- struct{}{}:
		default:
		}
	}
	for _, g := range c.groups {
		for i, in := range g.Instances {
			if in.ID != id || in.LifecycleState != cloud.LifecycleInService {
				continue
			}
			if decrement {
				g.Desired--
			}
			if c.hasHookLocked(g.Name) {
				g.Instances[i].LifecycleState = cloud.LifecycleTerminatingWait
			} else {
				g.Instances = append(g.Instances[:i], g.Instances[i+1:]...)
			}
			if !decrement {
				c.resizeLocked(g, g.Desired)
			}
			return cloud.Activity{ID: "act-" + id}, nil
		}
	}
	return cloud.Activity{}, &cloud.Error{Op: "autoscaling:TerminateInstanceInAutoScalingGroup", Kind: cloud.ErrInstanceNotFound, Err: fmt.Errorf("no instance %s", id)}
}

// terminateByGroup is a termination Shoal did not start (a health
// replacement, say): the hook catches it and a replacement launches.
func (c *fakeCloud) terminateByGroup(group, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[group]
	for i, in := range g.Instances {
		if in.ID == id {
			g.Instances[i].LifecycleState = cloud.LifecycleTerminatingWait
		}
	}
	c.resizeLocked(g, g.Desired)
}

func (c *fakeCloud) SetInstanceProtection(_ context.Context, group string, ids []string, protected bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, in := range c.groups[group].Instances {
		for _, id := range ids {
			if in.ID == id {
				c.groups[group].Instances[i].Protected = protected
			}
		}
	}
	return nil
}

func (c *fakeCloud) ActiveInstanceRefresh(_ context.Context, group string) (*cloud.InstanceRefresh, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refresh[group], nil
}

func (c *fakeCloud) DescribeScalingActivities(_ context.Context, group string, max int32) ([]cloud.Activity, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.record("DescribeScalingActivities " + group)
	acts := c.activities[group]
	if int(max) < len(acts) {
		acts = acts[:max]
	}
	return acts, nil
}

func (c *fakeCloud) PutLifecycleHook(_ context.Context, h cloud.LifecycleHook) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.record("PutLifecycleHook " + h.Group + " " + h.Name)
	c.hooks[h.Group] = append(c.hooks[h.Group], h)
	return nil
}

func (c *fakeCloud) DescribeLifecycleHooks(_ context.Context, group string) ([]cloud.LifecycleHook, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]cloud.LifecycleHook(nil), c.hooks[group]...), nil
}

func (c *fakeCloud) CompleteLifecycleAction(_ context.Context, a cloud.LifecycleAction, result string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.record(fmt.Sprintf("CompleteLifecycleAction %s %s", a.InstanceID, result))
	g := c.groups[a.Group]
	for i, in := range g.Instances {
		if in.ID == a.InstanceID && in.LifecycleState == cloud.LifecycleTerminatingWait {
			g.Instances = append(g.Instances[:i], g.Instances[i+1:]...)
			return nil
		}
	}
	return &cloud.Error{Op: "autoscaling:CompleteLifecycleAction", Kind: cloud.ErrLifecycleActionNotFound, Err: fmt.Errorf("no action for %s", a.InstanceID)}
}

func (c *fakeCloud) RecordLifecycleActionHeartbeat(_ context.Context, a cloud.LifecycleAction) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.record("RecordLifecycleActionHeartbeat " + a.InstanceID)
	return nil
}

// metricsFake reports the same values for every in-group instance.
type metricsFake struct {
	mu     sync.Mutex
	values map[string]map[string]float64
}

func (m *metricsFake) set(ids []string, metric string, v float64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.values == nil {
		m.values = map[string]map[string]float64{}
	}
	for _, id := range ids {
		if m.values[id] == nil {
			m.values[id] = map[string]float64{}
		}
		m.values[id][metric] = v
	}
}

func (m *metricsFake) Latest(string) map[string]map[string]float64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]map[string]float64{}
	for id, vs := range m.values {
		out[id] = map[string]float64{}
		for k, v := range vs {
			out[id][k] = v
		}
	}
	return out
}

// lbFake holds drains until released.
type lbFake struct {
	mu      sync.Mutex
	drained map[string]bool
}

func (l *lbFake) Drained(_, id string) (bool, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.drained[id] {
		return true, ""
	}
	return false, "lb1: 2 in flight"
}

func (l *lbFake) release(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.drained == nil {
		l.drained = map[string]bool{}
	}
	l.drained[id] = true
}

func (l *lbFake) RequestsPerTarget(string) (float64, bool) { return 0, false }

// agentsFake records on-drain hooks.
type agentsFake struct {
	mu      sync.Mutex
	drained []string
	// hold, when set, keeps every on-drain hook running until it closes.
	hold chan struct{}
}

func (a *agentsFake) Drain(_ context.Context, id string) error {
	a.mu.Lock()
	hold := a.hold
	a.mu.Unlock()
	if hold != nil {
		<-hold
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.drained = append(a.drained, id)
	return nil
}

func (a *agentsFake) list() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := append([]string(nil), a.drained...)
	sort.Strings(out)
	return out
}
