package localcloud

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/deploy/internal/localcloud/cwstore"
)

// fakeClock is a settable Clock for state tests.
type fakeClock struct{ t time.Time }

func (f *fakeClock) Now() time.Time { return f.t }

// newStateCloud returns a Cloud whose instances are fake processes the test
// ends by closing their done channel.
func newStateCloud(t *testing.T, mut func(*Config)) (*Cloud, *fakeClock, map[string]*proc) {
	t.Helper()
	clk := &fakeClock{t: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	cfg := DefaultConfig()
	cfg.Clock, cfg.BootDelay, cfg.InstanceIPPrefix, cfg.TerminateGrace = clk, 3*time.Second, "127.0.78", time.Millisecond
	if mut != nil {
		mut(&cfg)
	}
	c, err := NewCloud(cfg)
	if err != nil {
		t.Fatal(err)
	}
	procs := map[string]*proc{}
	c.spawn = func(spec procSpec) (*proc, error) {
		p := &proc{done: make(chan struct{})}
		procs[strings.Join(spec.Env, " ")] = p
		return p, nil
	}
	t.Cleanup(func() {
		for _, p := range procs {
			select {
			case <-p.done:
			default:
				close(p.done)
			}
		}
		c.Shutdown(time.Second)
	})
	return c, clk, procs
}

func ip(n int) *int { return &n }

func mustGroup(t *testing.T, c *Cloud, name string, min, max, desired int) {
	t.Helper()
	if _, err := c.CreateLaunchTemplate("lt-"+name, LTVersion{ImageID: BaseImageID}, nil); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateGroup(GroupInput{Name: name, LT: &LTRef{Name: "lt-" + name}, Min: ip(min), Max: ip(max), Desired: ip(desired),
		VPCZoneIdentifier: defaultSubnets[0].ID + "," + defaultSubnets[1].ID + "," + defaultSubnets[2].ID}); err != nil {
		t.Fatal(err)
	}
}

func lifecycles(c *Cloud, group string) map[string]int {
	out := map[string]int{}
	for _, g := range c.Groups([]string{group}) {
		for _, in := range g.Instances {
			out[in.Lifecycle]++
		}
	}
	return out
}

func TestReconcileBootHealthAndReplacement(t *testing.T) {
	c, clk, _ := newStateCloud(t, nil)
	mustGroup(t, c, "g", 1, 5, 3)
	c.Reconcile()
	if got := lifecycles(c, "g"); got["Pending"] != 3 {
		t.Fatalf("after first pass: %v, want 3 Pending", got)
	}
	clk.t = clk.t.Add(2 * time.Second)
	c.Reconcile()
	if got := lifecycles(c, "g"); got["Pending"] != 3 {
		t.Fatalf("before the boot delay: %v", got)
	}
	clk.t = clk.t.Add(time.Second)
	c.Reconcile()
	if got := lifecycles(c, "g"); got["InService"] != 3 {
		t.Fatalf("after the boot delay: %v", got)
	}
	g := c.Groups([]string{"g"})[0]
	zones := map[string]bool{}
	for _, in := range g.Instances {
		zones[in.AZ] = true
	}
	if len(zones) != 3 {
		t.Fatalf("zones %v", zones)
	}
	crashed := g.Instances[0].ID
	c.mu.Lock()
	close(c.instances[crashed].proc.done)
	c.mu.Unlock()
	c.Reconcile() // unhealthy, taken out of service, replacement launched
	c.Reconcile() // terminated
	c.mu.Lock()
	st, health := c.instances[crashed].State, c.instances[crashed].Health
	c.mu.Unlock()
	if st != stateTerminated || health != "Unhealthy" {
		t.Fatalf("crashed instance is %s/%s", st, health)
	}
	if got := lifecycles(c, "g"); got["InService"] != 2 || got["Pending"] != 1 {
		t.Fatalf("after crash: %v, want 2 InService + 1 Pending replacement", got)
	}
}

func TestReconcileRespectsSuspendedReplaceUnhealthy(t *testing.T) {
	c, clk, _ := newStateCloud(t, nil)
	mustGroup(t, c, "g", 1, 1, 1)
	c.Reconcile()
	clk.t = clk.t.Add(3 * time.Second)
	c.Reconcile()
	if err := c.SuspendResume("g", []string{"ReplaceUnhealthy"}, true); err != nil {
		t.Fatal(err)
	}
	id := c.Groups(nil)[0].Instances[0].ID
	c.mu.Lock()
	close(c.instances[id].proc.done)
	c.mu.Unlock()
	c.Reconcile()
	in := c.Groups(nil)[0].Instances[0]
	if in.ID != id || in.Health != "Unhealthy" || in.Lifecycle != "InService" {
		t.Fatalf("with ReplaceUnhealthy suspended the instance must stay, marked Unhealthy: %+v", in.Lifecycle)
	}
}

func TestPickSubnetAndVictims(t *testing.T) {
	sub := []string{"a", "b", "c"}
	mk := func(id, subnet, az string, age int, protected bool) *Instance {
		return &Instance{ID: id, SubnetID: subnet, AZ: az, LaunchTime: time.Unix(int64(age), 0), Protected: protected}
	}
	cases := []struct {
		name   string
		active []*Instance
		want   string
	}{
		{"empty group takes the first subnet", nil, "a"},
		{"fills the emptiest zone", []*Instance{mk("1", "a", "za", 1, false), mk("2", "b", "zb", 2, false)}, "c"},
		{"ties go to the first listed", []*Instance{mk("1", "a", "za", 1, false), mk("2", "b", "zb", 2, false), mk("3", "c", "zc", 3, false)}, "a"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := pickSubnet(sub, c.active); got != c.want {
				t.Fatalf("pickSubnet = %s, want %s", got, c.want)
			}
		})
	}
	active := []*Instance{
		mk("old-a", "a", "za", 1, false), mk("new-a", "a", "za", 5, false),
		mk("old-b", "b", "zb", 2, true), mk("new-b", "b", "zb", 6, false),
		mk("c", "c", "zc", 3, false),
	}
	var got []string
	for _, v := range chooseVictims(active, 3) {
		got = append(got, v.ID)
	}
	// za has the most unprotected instances and loses its oldest; then za,
	// zb and zc tie at one and the first zone goes; protected old-b never does.
	if strings.Join(got, ",") != "old-a,new-a,new-b" {
		t.Fatalf("victims = %v", got)
	}
	if v := chooseVictims([]*Instance{mk("p", "a", "za", 1, true)}, 1); len(v) != 0 {
		t.Fatalf("protected instance chosen: %v", v)
	}
}

func TestValidateSizes(t *testing.T) {
	cases := []struct {
		name              string
		min, max, desired int
		ok                bool
	}{
		{"valid", 1, 3, 2, true},
		{"min equals max", 2, 2, 2, true},
		{"min above max", 4, 3, 3, false},
		{"negative min", -1, 3, 0, false},
		{"desired above max", 1, 3, 4, false},
		{"desired below min", 2, 3, 1, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := validateSizes(c.min, c.max, c.desired)
			if (err == nil) != c.ok {
				t.Fatalf("validateSizes(%d,%d,%d) = %v", c.min, c.max, c.desired, err)
			}
			if err != nil && !errors.Is(err, ErrValidation) {
				t.Fatalf("%v is not a ValidationError", err)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		mut  func(*Config)
		want string
	}{
		{"defaults", func(*Config) {}, ""},
		{"negative boot delay", func(c *Config) { c.BootDelay = -time.Second }, "boot-delay"},
		{"slow alarms", func(c *Config) { c.AlarmInterval = time.Minute }, "alarm-interval"},
		{"non-loopback prefix", func(c *Config) { c.InstanceIPPrefix = "10.0.0" }, "instance-ip-prefix"},
		{"loopback /16", func(c *Config) { c.InstanceIPPrefix = "127.1" }, ""},
		{"non-loopback /16", func(c *Config) { c.InstanceIPPrefix = "10.1" }, "instance-ip-prefix"},
		{"one octet", func(c *Config) { c.InstanceIPPrefix = "127" }, "instance-ip-prefix"},
		{"other region", func(c *Config) { c.Region = "eu-west-1" }, "region"},
		{"bad addr", func(c *Config) { c.Addr = "nocolon" }, "addr"},
		{"no shell", func(c *Config) { c.Shell = "" }, "shell"},
		{"no logger", func(c *Config) { c.Logger = nil }, "logger"},
		{"zero config", func(c *Config) { *c = Config{} }, "alarm-interval"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			c.mut(&cfg)
			before := fmt.Sprintf("%+v", cfg)
			err := cfg.Validate()
			if after := fmt.Sprintf("%+v", cfg); after != before {
				t.Fatalf("Validate changed the config:\n%s\n%s", before, after)
			}
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Validate = %v, want an ErrConfig naming %s", err, c.want)
			}
		})
	}
}

func TestOffsetClock(t *testing.T) {
	real := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := &OffsetClock{real: func() time.Time { return real }}
	c.Advance(90 * time.Second)
	if got := c.Now(); !got.Equal(real.Add(90 * time.Second)) {
		t.Fatalf("after Advance: %s", got)
	}
	c.Advance(-time.Hour)
	if got := c.Now(); !got.Equal(real.Add(90 * time.Second)) {
		t.Fatalf("negative Advance moved the clock: %s", got)
	}
	if c.Set(real) {
		t.Fatal("Set moved the clock backwards")
	}
	if !c.Set(real.Add(time.Hour)) || !c.Now().Equal(real.Add(time.Hour)) {
		t.Fatalf("Set forward: %s", c.Now())
	}
}

func TestQueryFormLists(t *testing.T) {
	f := qform{
		"Tags.member.1.Key": {"a"}, "Tags.member.1.Value": {"1"}, "Tags.member.2.Key": {"b"},
		"AutoScalingGroupNames.member.1": {"x"}, "AutoScalingGroupNames.member.2": {"y"},
		"MinSize": {"nope"},
	}
	if got := f.list("AutoScalingGroupNames.member"); strings.Join(got, ",") != "x,y" {
		t.Fatalf("list = %v", got)
	}
	if got := f.structs("Tags.member"); len(got) != 2 || got[1] != "Tags.member.2." {
		t.Fatalf("structs = %v", got)
	}
	if _, err := f.intp("MinSize"); err == nil || !strings.Contains(err.Error(), "MinSize") {
		t.Fatalf("intp on a non-integer = %v", err)
	}
}

func TestStateFileRoundTrip(t *testing.T) {
	file := filepath.Join(t.TempDir(), "state.json")
	c, _, _ := newStateCloud(t, func(cfg *Config) { cfg.StateFile = file })
	mustGroup(t, c, "g", 0, 2, 0)
	if err := c.PutHook("g", Hook{Name: "drain", Transition: transitionTerminating}); err != nil {
		t.Fatal(err)
	}
	a := cwstore.Alarm{Name: "cpu", Metric: cwstore.MetricID{Namespace: "Shoal", MetricName: "CPU"}, Statistic: "Average", Period: 60,
		EvaluationPeriods: 1, ComparisonOperator: "GreaterThanThreshold", Threshold: 5}
	na := cwstore.NewAlarm(a, nil, c.Now())
	c.mu.Lock()
	c.alarms["cpu"] = &na
	c.dirty = true
	c.mu.Unlock()
	c.Reconcile() // saves

	c2, _, _ := newStateCloud(t, func(cfg *Config) { cfg.StateFile = file })
	gs := c2.Groups(nil)
	if len(gs) != 1 || gs[0].Name != "g" || gs[0].Hooks["drain"] == nil || gs[0].Hooks["drain"].HeartbeatTimeout != 3600 {
		t.Fatalf("groups after reload: %+v", gs)
	}
	lts, err := c2.LaunchTemplates(nil, []string{"lt-g"})
	if err != nil || len(lts) != 1 {
		t.Fatalf("templates after reload: %v %v", lts, err)
	}
	if c2.alarms["cpu"] == nil || c2.alarms["cpu"].State != cwstore.StateInsufficientData {
		t.Fatalf("alarm after reload: %+v", c2.alarms["cpu"])
	}
}

func TestZeroBootDelayBootsAtOnce(t *testing.T) {
	c, _, _ := newStateCloud(t, func(cfg *Config) { cfg.BootDelay = 0 })
	mustGroup(t, c, "g", 1, 1, 1)
	c.Reconcile() // launch
	c.Reconcile() // boot
	if got := lifecycles(c, "g"); got["InService"] != 1 {
		t.Fatalf("boot delay 0: %v", got)
	}
}

// TestAllocIPSixteen: a two-octet prefix hands out a /16, skipping each
// /24's .0 and .255, past the 254 a /24 holds.
func TestAllocIPSixteen(t *testing.T) {
	c := &Cloud{cfg: Config{InstanceIPPrefix: "127.1"}, ipUsed: map[string]bool{}}
	var got []string
	for range 300 {
		ip, err := c.allocIP()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ip)
	}
	if got[0] != "127.1.0.1" || got[253] != "127.1.0.254" || got[254] != "127.1.1.1" || got[299] != "127.1.1.46" {
		t.Errorf("addresses %v ... %v", got[:2], got[252:256])
	}
}
