package bootstrap

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// fakeCloud keeps just the state bootstrap reads and writes, and counts
// writes so tests can prove a re-run duplicates nothing.
type fakeCloud struct {
	mu        sync.Mutex
	instances map[string]string // id -> state
	subnets   map[string]bool
	images    map[string]*cloud.Image
	templates map[string]*cloud.LaunchTemplate
	groups    map[string]*cloud.Group
	groupSpec map[string]cloud.GroupSpec
	hooks     map[string][]cloud.LifecycleHook
	writes    []string
	// pollsUntilAvailable is how many DescribeImages by id see "pending".
	pollsUntilAvailable int
	failCreateGroup     error
	n                   int
	templateType        map[string]string
	templateSpec        map[string]cloud.LaunchTemplateSpec
	pools               map[string]cloud.WarmPoolSpec
}

func newFake() *fakeCloud {
	return &fakeCloud{
		instances: map[string]string{"i-0123456789abcdef0": "running", "i-00000000000000bad": "terminated"},
		subnets:   map[string]bool{"subnet-0a0a0a0a": true, "subnet-0b0b0b0b": true},
		images:    map[string]*cloud.Image{}, templates: map[string]*cloud.LaunchTemplate{},
		groups: map[string]*cloud.Group{}, groupSpec: map[string]cloud.GroupSpec{}, hooks: map[string][]cloud.LifecycleHook{},
		pollsUntilAvailable: 2,
	}
}

func (f *fakeCloud) write(s string) { f.writes = append(f.writes, s) }

func (f *fakeCloud) RunInstances(context.Context, cloud.RunSpec) ([]cloud.EC2Instance, error) {
	return nil, errors.New("not used")
}
func (f *fakeCloud) TerminateInstances(context.Context, []string) error {
	return errors.New("not used")
}
func (f *fakeCloud) DescribeInstances(_ context.Context, ids []string) ([]cloud.EC2Instance, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []cloud.EC2Instance
	for _, id := range ids {
		if st, ok := f.instances[id]; ok {
			out = append(out, cloud.EC2Instance{ID: id, State: st, Type: "c7g.large", SecurityGroupIDs: []string{"sg-0fleet"}, InstanceProfileARN: "arn:aws:iam::1:instance-profile/agent"})
		}
	}
	return out, nil
}
func (f *fakeCloud) CreateImage(_ context.Context, s cloud.ImageSpec) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.write("CreateImage " + s.Name)
	f.n++
	id := fmt.Sprintf("ami-%08x", f.n)
	f.images[id] = &cloud.Image{ID: id, Name: s.Name, State: "pending"}
	return id, nil
}
func (f *fakeCloud) DescribeImages(_ context.Context, q cloud.ImageQuery) ([]cloud.Image, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []cloud.Image
	for _, img := range f.images {
		for _, n := range q.Names {
			if img.Name == n {
				out = append(out, *img)
			}
		}
		for _, id := range q.IDs {
			if img.ID == id {
				if img.State == "pending" {
					f.pollsUntilAvailable--
					if f.pollsUntilAvailable < 0 {
						img.State = "available"
					}
				}
				out = append(out, *img)
			}
		}
	}
	return out, nil
}
func (f *fakeCloud) CreateLaunchTemplate(_ context.Context, s cloud.LaunchTemplateSpec) (cloud.LaunchTemplate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.write("CreateLaunchTemplate " + s.Name + " " + s.ImageID)
	if f.templateType == nil {
		f.templateType = map[string]string{}
	}
	f.templateType[s.Name] = s.InstanceType
	if f.templateSpec == nil {
		f.templateSpec = map[string]cloud.LaunchTemplateSpec{}
	}
	f.templateSpec[s.Name] = s
	lt := cloud.LaunchTemplate{ID: "lt-" + s.Name, Name: s.Name, DefaultVersion: 1, LatestVersion: 1}
	f.templates[s.Name] = &lt
	return lt, nil
}
func (f *fakeCloud) CreateLaunchTemplateVersion(_ context.Context, name string, s cloud.LaunchTemplateSpec) (cloud.LaunchTemplate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.write("CreateLaunchTemplateVersion " + name + " " + s.ImageID)
	lt := f.templates[name]
	lt.LatestVersion++
	lt.DefaultVersion = lt.LatestVersion
	return *lt, nil
}
func (f *fakeCloud) DescribeLaunchTemplates(_ context.Context, names []string) ([]cloud.LaunchTemplate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []cloud.LaunchTemplate
	for _, n := range names {
		if lt, ok := f.templates[n]; ok {
			out = append(out, *lt)
		}
	}
	return out, nil
}
func (f *fakeCloud) CreateGroup(_ context.Context, s cloud.GroupSpec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.write("CreateGroup " + s.Name)
	if f.failCreateGroup != nil {
		err := f.failCreateGroup
		f.failCreateGroup = nil
		return err
	}
	f.groups[s.Name] = &cloud.Group{Name: s.Name, Min: s.Min, Max: s.Max, Desired: s.Desired}
	f.groupSpec[s.Name] = s
	return nil
}
func (f *fakeCloud) UpdateGroup(context.Context, cloud.GroupUpdate) error {
	return errors.New("not used")
}
func (f *fakeCloud) DescribeSubnets(_ context.Context, q cloud.SubnetQuery) ([]cloud.Subnet, error) {
	var out []cloud.Subnet
	for _, id := range q.IDs {
		if f.subnets[id] {
			out = append(out, cloud.Subnet{ID: id})
		}
	}
	return out, nil
}
func (f *fakeCloud) DescribeGroups(_ context.Context, names []string) ([]cloud.Group, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []cloud.Group
	for _, n := range names {
		if g, ok := f.groups[n]; ok {
			out = append(out, *g)
		}
	}
	return out, nil
}
func (f *fakeCloud) PutLifecycleHook(_ context.Context, h cloud.LifecycleHook) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.write("PutLifecycleHook " + h.Name)
	f.hooks[h.Group] = append(f.hooks[h.Group], h)
	return nil
}
func (f *fakeCloud) DescribeLifecycleHooks(_ context.Context, g string) ([]cloud.LifecycleHook, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]cloud.LifecycleHook(nil), f.hooks[g]...), nil
}
func (f *fakeCloud) DescribeWarmPool(_ context.Context, g string) (*cloud.WarmPool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	p, ok := f.pools[g]
	if !ok {
		return nil, nil
	}
	return &cloud.WarmPool{Group: g, MinSize: p.MinSize, PoolState: p.PoolState}, nil
}
func (f *fakeCloud) PutWarmPool(_ context.Context, p cloud.WarmPoolSpec) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.write("PutWarmPool " + p.Group)
	if f.pools == nil {
		f.pools = map[string]cloud.WarmPoolSpec{}
	}
	f.pools[p.Group] = p
	return nil
}

type fakeControl struct {
	fleets   map[string]*shoalv1.Fleet
	policies int
}

func (c *fakeControl) GetFleet(_ context.Context, name string) (*shoalv1.Fleet, error) {
	if f, ok := c.fleets[name]; ok {
		return proto.CloneOf(f), nil
	}
	return nil, status.Errorf(codes.NotFound, "fleet %q: unknown fleet", name)
}
func (c *fakeControl) CreateFleet(_ context.Context, f *shoalv1.Fleet) (*shoalv1.Fleet, error) {
	c.fleets[f.Name] = proto.CloneOf(f)
	return f, nil
}
func (c *fakeControl) UpdateFleet(_ context.Context, r *shoalv1.UpdateFleetRequest) (*shoalv1.Fleet, error) {
	f := c.fleets[r.GetFleet().GetName()]
	if got, want := r.GetUpdateMask().GetPaths(), []string{"min", "max", "app_port"}; !slices.Equal(got, want) {
		return nil, status.Errorf(codes.InvalidArgument, "update_mask %v, want %v", got, want)
	}
	f.Min, f.Max, f.AppPort = r.Fleet.Min, r.Fleet.Max, r.Fleet.AppPort
	return proto.CloneOf(f), nil
}
func (c *fakeControl) SetPolicy(_ context.Context, name string, p *shoalv1.ScalingPolicy) (*shoalv1.Fleet, error) {
	c.policies++
	c.fleets[name].Policy = p
	return c.fleets[name], nil
}
func (c *fakeControl) Coordinators(context.Context) ([]string, error) {
	return []string{"127.0.0.1:7402", "127.0.0.1:7401"}, nil
}

func spec() Spec {
	s := DefaultSpec()
	s.Fleet, s.FromInstance, s.Subnets = "web", "i-0123456789abcdef0", []string{"subnet-0a0a0a0a", "subnet-0b0b0b0b"}
	s.Min, s.Max, s.AppPort = 2, 8, 8080
	s.Policy = &shoalv1.ScalingPolicy{TargetTracking: []*shoalv1.TargetTracking{{Metric: "cpu", Target: 50}}}
	return s
}

func runner(c *fakeCloud, ctl *fakeControl, out *bytes.Buffer) *Runner {
	return &Runner{Cloud: c, Control: ctl, Out: out, Sleep: func(context.Context, time.Duration) error { return nil }}
}

func TestBootstrapMakesEverythingOnce(t *testing.T) {
	c, ctl := newFake(), &fakeControl{fleets: map[string]*shoalv1.Fleet{}}
	var out bytes.Buffer
	items, err := runner(c, ctl, &out).Run(context.Background(), spec())
	if err != nil {
		t.Fatal(err)
	}
	kinds := []string{}
	for _, it := range items {
		if !it.Created || it.ID == "" {
			t.Errorf("first run: %+v should be created with an id", it)
		}
		kinds = append(kinds, it.Kind)
	}
	if got := strings.Join(kinds, ","); got != "image,launch-template,auto-scaling-group,lifecycle-hook,fleet,policy" {
		t.Fatalf("items = %s", got)
	}
	if got := c.templateType["shoal-web"]; got != "c7g.large" {
		t.Fatalf("launch template instance type = %q, want the source instance's c7g.large", got)
	}
	if lt := c.templateSpec["shoal-web"]; strings.Join(lt.SecurityGroupIDs, ",") != "sg-0fleet" || lt.InstanceProfileARN == "" || !lt.IMDSv2Required || !lt.MetadataTags {
		t.Fatalf("launch template = %+v, want the source's security groups and profile, IMDSv2 and tags in metadata", lt)
	}
	gs := c.groupSpec["shoal-web"]
	if gs.Tags[CoordinatorsTag] != "127.0.0.1:7401,127.0.0.1:7402" || strings.Join(gs.SubnetIDs, ",") != "subnet-0a0a0a0a,subnet-0b0b0b0b" || gs.Min != 2 || gs.Max != 8 || gs.Desired != 2 {
		t.Fatalf("group spec = %+v", gs)
	}
	if f := ctl.fleets["web"]; f.Asg != "shoal-web" || f.AppPort != 8080 || f.Policy.TargetTracking[0].Target != 50 {
		t.Fatalf("fleet = %v", f)
	}
	writes := len(c.writes)

	items, err = runner(c, ctl, &out).Run(context.Background(), spec())
	if err != nil {
		t.Fatal(err)
	}
	if len(c.writes) != writes {
		t.Fatalf("re-run wrote again: %v", c.writes[writes:])
	}
	for _, it := range items[:5] {
		if it.Created {
			t.Errorf("re-run: %+v should have been found, not created", it)
		}
	}
}

func TestBootstrapResumesAfterFailure(t *testing.T) {
	c, ctl := newFake(), &fakeControl{fleets: map[string]*shoalv1.Fleet{}}
	c.failCreateGroup = errors.New("Throttling: Rate exceeded")
	var out bytes.Buffer
	if _, err := runner(c, ctl, &out).Run(context.Background(), spec()); err == nil || !strings.Contains(err.Error(), "create group shoal-web") {
		t.Fatalf("err = %v, want the group creation failure", err)
	}
	if _, err := runner(c, ctl, &out).Run(context.Background(), spec()); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, w := range c.writes {
		count[strings.Fields(w)[0]]++
	}
	if count["CreateImage"] != 1 || count["CreateLaunchTemplate"] != 1 || count["CreateGroup"] != 2 || count["CreateLaunchTemplateVersion"] != 0 {
		t.Fatalf("writes = %v: the re-run must reuse the image and template", c.writes)
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	c, ctl := newFake(), &fakeControl{fleets: map[string]*shoalv1.Fleet{}}
	s := spec()
	s.DryRun = true
	var out bytes.Buffer
	if _, err := runner(c, ctl, &out).Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if len(c.writes) != 0 || len(ctl.fleets) != 0 {
		t.Fatalf("dry run wrote %v, fleets %v", c.writes, ctl.fleets)
	}
	for _, want := range []string{"would call ec2:CreateImage InstanceId=i-0123456789abcdef0", "would call ec2:CreateLaunchTemplate", "would call autoscaling:CreateAutoScalingGroup AutoScalingGroupName=shoal-web", "shoal:coordinators=127.0.0.1:7401,127.0.0.1:7402", "would call autoscaling:PutLifecycleHook", "would create or update fleet web"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("dry-run output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Spec)
		want string
	}{
		{"min over max", func(s *Spec) { s.Min, s.Max = 5, 3 }, "--min (5) must be <= --max (3)"},
		{"bad instance", func(s *Spec) { s.FromInstance = "web-1" }, "--from-instance"},
		{"no subnets", func(s *Spec) { s.Subnets = nil }, "--subnets: at least one"},
		{"bad subnet", func(s *Spec) { s.Subnets = []string{"private-a"} }, `"private-a" is not a subnet id`},
		{"bad port", func(s *Spec) { s.AppPort = 70000 }, "--app-port (70000)"},
		{"bad target", func(s *Spec) { s.Policy.TargetTracking[0].Target = 0 }, "target"},
		{"desired out of range", func(s *Spec) { s.Desired = 9 }, "--desired (9)"},
		{"bad fleet name", func(s *Spec) { s.Fleet = "web/x" }, `fleet name ("web/x")`},
		{"no hook heartbeat", func(s *Spec) { s.HookHeartbeat = 0 }, "--hook-heartbeat (0s): must be whole seconds from 30s to 2h0m0s"},
		{"no image timeout", func(s *Spec) { s.ImageTimeout = -time.Second }, "--image-timeout (-1s)"},
		{"no poll interval", func(s *Spec) { s.PollEvery = 0 }, "poll every (0s)"},
		{"negative warm pool", func(s *Spec) { s.WarmPoolMin = -1 }, "--warm-pool-min (-1)"},
		{"bad warm pool state", func(s *Spec) { s.WarmPoolMin, s.WarmPoolState = 2, "Frozen" }, `--warm-pool-state ("Frozen")`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := spec()
			tc.mod(&s)
			before := fmt.Sprintf("%+v", s)
			err := s.Validate()
			if after := fmt.Sprintf("%+v", s); after != before {
				t.Fatalf("Validate changed the spec: %s -> %s", before, after)
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestBootstrapRefusesBadCloudState(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Spec)
		want string
	}{
		{"unknown subnet", func(s *Spec) { s.Subnets = []string{"subnet-0c0c0c0c"} }, "subnet subnet-0c0c0c0c does not exist"},
		{"terminated instance", func(s *Spec) { s.FromInstance = "i-00000000000000bad" }, "is terminated"},
		{"unknown instance", func(s *Spec) { s.FromInstance = "i-0000000000000dead" }, "does not exist"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, ctl := newFake(), &fakeControl{fleets: map[string]*shoalv1.Fleet{}}
			s := spec()
			tc.mod(&s)
			_, err := runner(c, ctl, &bytes.Buffer{}).Run(context.Background(), s)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if len(c.writes) != 0 {
				t.Fatalf("wrote %v before refusing", c.writes)
			}
		})
	}
}

// notFoundTemplates answers an unknown launch template name the way EC2
// does: with an error, not an empty list.
type notFoundTemplates struct{ *fakeCloud }

func (n notFoundTemplates) DescribeLaunchTemplates(ctx context.Context, names []string) ([]cloud.LaunchTemplate, error) {
	lts, _ := n.fakeCloud.DescribeLaunchTemplates(ctx, names)
	if len(lts) == 0 {
		return nil, &cloud.Error{Op: "ec2:DescribeLaunchTemplates", Code: "InvalidLaunchTemplateName.NotFoundException", Status: 400, Kind: cloud.ErrNotFound, Err: errors.New("does not exist")}
	}
	return lts, nil
}

func TestUnknownTemplateErrorMeansNone(t *testing.T) {
	c, ctl := newFake(), &fakeControl{fleets: map[string]*shoalv1.Fleet{}}
	r := &Runner{Cloud: notFoundTemplates{c}, Control: ctl, Out: &bytes.Buffer{}, Sleep: func(context.Context, time.Duration) error { return nil }}
	if _, err := r.Run(context.Background(), spec()); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.templates["shoal-web"]; !ok {
		t.Fatal("the template was not created")
	}
}

func TestBootstrapWarmPoolOnce(t *testing.T) {
	c, ctl := newFake(), &fakeControl{fleets: map[string]*shoalv1.Fleet{}}
	s := spec()
	s.WarmPoolMin, s.WarmPoolState = 2, "Running"
	var out bytes.Buffer
	items, err := runner(c, ctl, &out).Run(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	var wp *Item
	for i := range items {
		if items[i].Kind == "warm-pool" {
			wp = &items[i]
		}
	}
	if wp == nil || !wp.Created || wp.ID != "shoal-web" {
		t.Fatalf("items = %+v, want a created warm pool", items)
	}
	if p := c.pools["shoal-web"]; p.MinSize != 2 || p.PoolState != "Running" {
		t.Fatalf("pool = %+v", p)
	}
	writes := len(c.writes)
	if _, err := runner(c, ctl, &out).Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if len(c.writes) != writes {
		t.Fatalf("re-run wrote again: %v", c.writes[writes:])
	}
	// Without --warm-pool-min nothing touches warm pools.
	c2 := newFake()
	if _, err := runner(c2, &fakeControl{fleets: map[string]*shoalv1.Fleet{}}, &out).Run(context.Background(), spec()); err != nil {
		t.Fatal(err)
	}
	if len(c2.pools) != 0 {
		t.Fatalf("a warm pool without --warm-pool-min: %v", c2.pools)
	}
}
