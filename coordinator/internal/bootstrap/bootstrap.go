package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
	"github.com/shoal-dev/shoal/coordinator/internal/decide"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// CoordinatorsTag is the group tag, propagated to every instance, from which
// agents learn where the coordinators are; one baked image serves any cluster.
const CoordinatorsTag = "shoal:coordinators"

// Cloud is what bootstrap needs of the cloud, and no more: the operator
// role that `fleet bootstrap` runs under grants exactly these methods'
// operations (cli.BootstrapAWSOperations, checked by deploy/check).
type Cloud interface {
	DescribeSubnets(ctx context.Context, q cloud.SubnetQuery) ([]cloud.Subnet, error)
	DescribeInstances(ctx context.Context, ids []string) ([]cloud.EC2Instance, error)
	CreateImage(ctx context.Context, spec cloud.ImageSpec) (string, error)
	DescribeImages(ctx context.Context, q cloud.ImageQuery) ([]cloud.Image, error)
	CreateLaunchTemplate(ctx context.Context, spec cloud.LaunchTemplateSpec) (cloud.LaunchTemplate, error)
	CreateLaunchTemplateVersion(ctx context.Context, template string, spec cloud.LaunchTemplateSpec) (cloud.LaunchTemplate, error)
	DescribeLaunchTemplates(ctx context.Context, names []string) ([]cloud.LaunchTemplate, error)
	CreateGroup(ctx context.Context, spec cloud.GroupSpec) error
	DescribeGroups(ctx context.Context, names []string) ([]cloud.Group, error)
	PutLifecycleHook(ctx context.Context, hook cloud.LifecycleHook) error
	DescribeLifecycleHooks(ctx context.Context, group string) ([]cloud.LifecycleHook, error)
	DescribeWarmPool(ctx context.Context, group string) (*cloud.WarmPool, error)
	PutWarmPool(ctx context.Context, spec cloud.WarmPoolSpec) error
}

// Control is what bootstrap needs of the coordinator's control API.
type Control interface {
	GetFleet(ctx context.Context, name string) (*shoalv1.Fleet, error)
	CreateFleet(ctx context.Context, f *shoalv1.Fleet) (*shoalv1.Fleet, error)
	UpdateFleet(ctx context.Context, req *shoalv1.UpdateFleetRequest) (*shoalv1.Fleet, error)
	SetPolicy(ctx context.Context, fleet string, p *shoalv1.ScalingPolicy) (*shoalv1.Fleet, error)
	// Coordinators lists the cluster's client addresses for the group tag.
	Coordinators(ctx context.Context) ([]string, error)
}

// Spec is one `fleet bootstrap` invocation. Start from DefaultSpec; the
// names left empty derive from the fleet's (see Resolve).
type Spec struct {
	Fleet        string
	FromInstance string
	Subnets      []string
	Min, Max     int32
	// Desired defaults to Min.
	Desired      int32
	Policy       *shoalv1.ScalingPolicy
	AppPort      int32
	ASG          string // default shoal-<fleet>
	Template     string // default shoal-<fleet>
	Image        string // default shoal-<fleet>-<from-instance>
	InstanceType string
	// Coordinators overrides the addresses put in the shoal:coordinators tag.
	Coordinators     []string
	HookName         string
	HookHeartbeat    time.Duration
	HealthCheckGrace time.Duration
	// ImageTimeout bounds the wait for the image to become available.
	ImageTimeout time.Duration
	PollEvery    time.Duration
	DryRun       bool
	// WarmPoolMin > 0 gives the group a warm pool of at least that many
	// instances kept in WarmPoolState (Stopped, Running or Hibernated).
	// AWS refuses a warm pool on a group whose template asks for Spot.
	WarmPoolMin   int32
	WarmPoolState string

	// Copied from the source instance.
	securityGroups  []string
	instanceProfile string
}

var (
	nameRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	instanceRE = regexp.MustCompile(`^i-[0-9a-f]{8,17}$`)
	subnetRE   = regexp.MustCompile(`^subnet-[0-9a-f]{8,17}$`)
)

// ErrInvalid wraps every validation error.
var ErrInvalid = errors.New("invalid bootstrap")

// DefaultSpec returns the settings every bootstrap shares; the fleet, its
// source instance, subnets and bounds are the caller's.
func DefaultSpec() Spec {
	return Spec{
		HookName:         cloud.DrainHookName,
		HookHeartbeat:    cloud.DrainHookHeartbeat,
		HealthCheckGrace: 30 * time.Second,
		ImageTimeout:     10 * time.Minute,
		PollEvery:        2 * time.Second,
		WarmPoolState:    "Stopped",
	}
}

// Resolve returns s with the names left empty derived from the fleet's
// (group and launch template shoal-<fleet>, image
// shoal-<fleet>-<from-instance>) and Desired, when 0, at Min.
func (s Spec) Resolve() Spec {
	if s.ASG == "" {
		s.ASG = "shoal-" + s.Fleet
	}
	if s.Template == "" {
		s.Template = "shoal-" + s.Fleet
	}
	if s.Image == "" {
		s.Image = "shoal-" + s.Fleet + "-" + s.FromInstance
	}
	if s.Desired == 0 {
		s.Desired = s.Min
	}
	return s
}

// Validate names the first wrong field of the resolved spec. It only reads s.
func (s Spec) Validate() error {
	s = s.Resolve()
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, a...)...)
	}
	switch {
	case !nameRE.MatchString(s.Fleet):
		return bad("fleet name (%q): must be 1-63 letters, digits, '.', '_' or '-'", s.Fleet)
	case !instanceRE.MatchString(s.FromInstance):
		return bad("--from-instance (%q): must be an instance id such as i-0123456789abcdef0", s.FromInstance)
	case len(s.Subnets) == 0:
		return bad("--subnets: at least one subnet id is required")
	case s.Min < 0:
		return bad("--min (%d): must be >= 0", s.Min)
	case s.Min > s.Max:
		return bad("--min (%d) must be <= --max (%d)", s.Min, s.Max)
	case s.Desired < s.Min || s.Desired > s.Max:
		return bad("--desired (%d) must be between --min (%d) and --max (%d)", s.Desired, s.Min, s.Max)
	case s.AppPort < 0 || s.AppPort > 65535:
		return bad("--app-port (%d): must be 1-65535", s.AppPort)
	case !nameRE.MatchString(s.ASG):
		return bad("--asg (%q): not a valid group name", s.ASG)
	case s.HookName == "":
		return bad("hook name: required")
	case s.HookHeartbeat < cloud.MinHookHeartbeat || s.HookHeartbeat > cloud.MaxHookHeartbeat || s.HookHeartbeat%time.Second != 0:
		return bad("--hook-heartbeat (%v): must be whole seconds from %v to %v (AWS's limits)", s.HookHeartbeat, cloud.MinHookHeartbeat, cloud.MaxHookHeartbeat)
	case s.HealthCheckGrace <= 0:
		return bad("health check grace (%v): must be > 0", s.HealthCheckGrace)
	case s.ImageTimeout <= 0:
		return bad("--image-timeout (%v): must be > 0", s.ImageTimeout)
	case s.PollEvery <= 0:
		return bad("poll every (%v): must be > 0", s.PollEvery)
	case s.WarmPoolMin < 0:
		return bad("--warm-pool-min (%d): must be >= 0", s.WarmPoolMin)
	case s.WarmPoolMin > 0 && !slices.Contains(cloud.WarmPoolStates, s.WarmPoolState):
		return bad("--warm-pool-state (%q): must be one of %s", s.WarmPoolState, strings.Join(cloud.WarmPoolStates, ", "))
	}
	for _, sn := range s.Subnets {
		if !subnetRE.MatchString(sn) {
			return bad("--subnets: %q is not a subnet id such as subnet-0123abcd", sn)
		}
	}
	if s.Policy != nil {
		if err := decide.Validate(s.Policy, s.Min, s.Max); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	return nil
}

// Item is one thing bootstrap made or found.
type Item struct {
	Kind    string // image, launch-template, auto-scaling-group, lifecycle-hook, fleet, policy
	ID      string
	Created bool
	Note    string
}

// Runner performs a bootstrap. Out receives one line per AWS write (the only
// output in dry-run mode).
type Runner struct {
	Cloud   Cloud
	Control Control
	Out     io.Writer
	// Sleep waits between polls; tests inject one that advances a clock.
	Sleep func(ctx context.Context, d time.Duration) error
}

func (r *Runner) sleep(ctx context.Context, d time.Duration) error {
	if r.Sleep != nil {
		return r.Sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// write prints a write call and reports whether to perform it.
func (r *Runner) write(s *Spec, call string) bool {
	prefix := "calling"
	if s.DryRun {
		prefix = "would call"
	}
	if r.Out != nil {
		fmt.Fprintf(r.Out, "%s %s\n", prefix, call)
	}
	return !s.DryRun
}

// Run bootstraps the fleet. Each step first looks for what an earlier run
// made, so a re-run after a failure resumes and never duplicates.
func (r *Runner) Run(ctx context.Context, s Spec) ([]Item, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	s = s.Resolve()
	var items []Item
	if err := r.checkSubnets(ctx, &s); err != nil {
		return nil, err
	}
	r.fromSource(ctx, &s)
	img, err := r.image(ctx, &s)
	if err != nil {
		return items, err
	}
	items = append(items, img)
	lt, err := r.template(ctx, &s, img.ID, img.Created)
	if err != nil {
		return items, err
	}
	items = append(items, lt)
	grp, err := r.group(ctx, &s, lt.ID)
	if err != nil {
		return items, err
	}
	items = append(items, grp)
	hook, err := r.hook(ctx, &s)
	if err != nil {
		return items, err
	}
	items = append(items, hook)
	if s.WarmPoolMin > 0 {
		wp, err := r.warmPool(ctx, &s)
		if err != nil {
			return items, err
		}
		items = append(items, wp)
	}
	fl, err := r.fleet(ctx, &s)
	if err != nil {
		return items, err
	}
	return append(items, fl...), nil
}

func (r *Runner) checkSubnets(ctx context.Context, s *Spec) error {
	subs, err := r.Cloud.DescribeSubnets(ctx, cloud.SubnetQuery{IDs: s.Subnets})
	if err != nil {
		return fmt.Errorf("describe subnets %s: %w", strings.Join(s.Subnets, ","), err)
	}
	found := map[string]bool{}
	for _, sn := range subs {
		found[sn.ID] = true
	}
	for _, id := range s.Subnets {
		if !found[id] {
			return fmt.Errorf("%w: --subnets: subnet %s does not exist", ErrInvalid, id)
		}
	}
	return nil
}

// fromSource gives the launch template what the source instance runs with:
// its type unless --instance-type is set (a template without one cannot
// launch on AWS), its security groups and its instance profile, so the
// fleet's instances reach what the source instance reached. Best effort: on
// a re-run the source instance may be gone, and the template exists then.
func (r *Runner) fromSource(ctx context.Context, s *Spec) {
	insts, err := r.Cloud.DescribeInstances(ctx, []string{s.FromInstance})
	if err != nil || len(insts) != 1 {
		return
	}
	if s.InstanceType == "" {
		s.InstanceType = insts[0].Type
	}
	s.securityGroups = insts[0].SecurityGroupIDs
	s.instanceProfile = insts[0].InstanceProfileARN
}

func (r *Runner) image(ctx context.Context, s *Spec) (Item, error) {
	imgs, err := r.Cloud.DescribeImages(ctx, cloud.ImageQuery{Names: []string{s.Image}})
	if err != nil {
		return Item{}, fmt.Errorf("describe images: %w", err)
	}
	it := Item{Kind: "image"}
	if len(imgs) > 0 {
		it.ID, it.Note = imgs[0].ID, "found "+s.Image
	} else {
		insts, err := r.Cloud.DescribeInstances(ctx, []string{s.FromInstance})
		if err != nil {
			return Item{}, fmt.Errorf("describe instance %s: %w", s.FromInstance, err)
		}
		if len(insts) == 0 {
			return Item{}, fmt.Errorf("%w: --from-instance: instance %s does not exist", ErrInvalid, s.FromInstance)
		}
		if st := insts[0].State; st != "running" && st != "stopped" {
			return Item{}, fmt.Errorf("%w: --from-instance: instance %s is %s; an image needs a running or stopped instance", ErrInvalid, s.FromInstance, st)
		}
		if !r.write(s, fmt.Sprintf("ec2:CreateImage InstanceId=%s Name=%s", s.FromInstance, s.Image)) {
			return Item{Kind: "image", ID: "(new)", Note: s.Image}, nil
		}
		id, err := r.Cloud.CreateImage(ctx, cloud.ImageSpec{InstanceID: s.FromInstance, Name: s.Image,
			Description: "Shoal fleet " + s.Fleet + " baked from " + s.FromInstance, Tags: map[string]string{"shoal:fleet": s.Fleet}})
		if err != nil {
			return Item{}, fmt.Errorf("create image from %s: %w", s.FromInstance, err)
		}
		it.ID, it.Created, it.Note = id, true, s.Image
	}
	if s.DryRun {
		return it, nil
	}
	deadline := time.Now().Add(s.ImageTimeout)
	for {
		imgs, err := r.Cloud.DescribeImages(ctx, cloud.ImageQuery{IDs: []string{it.ID}})
		if err != nil {
			return it, fmt.Errorf("describe image %s: %w", it.ID, err)
		}
		if len(imgs) == 1 {
			switch imgs[0].State {
			case "available":
				return it, nil
			case "failed", "invalid", "deregistered", "error":
				return it, fmt.Errorf("image %s is %s", it.ID, imgs[0].State)
			}
		}
		if time.Now().After(deadline) {
			return it, fmt.Errorf("image %s not available after %v; re-run to keep waiting", it.ID, s.ImageTimeout)
		}
		if err := r.sleep(ctx, s.PollEvery); err != nil {
			return it, err
		}
	}
}

func (r *Runner) template(ctx context.Context, s *Spec, imageID string, freshImage bool) (Item, error) {
	lts, err := r.Cloud.DescribeLaunchTemplates(ctx, []string{s.Template})
	if errors.Is(err, cloud.ErrNotFound) {
		// EC2 answers an unknown name with an error rather than an empty list.
		lts, err = nil, nil
	}
	if err != nil {
		return Item{}, fmt.Errorf("describe launch templates: %w", err)
	}
	// IMDSv2 only, with instance tags readable there: agents learn their
	// group and their coordinators from tags.
	spec := cloud.LaunchTemplateSpec{Name: s.Template, Description: "Shoal fleet " + s.Fleet, ImageID: imageID, InstanceType: s.InstanceType,
		Tags: map[string]string{"shoal:fleet": s.Fleet}, InstanceTags: map[string]string{"shoal:fleet": s.Fleet},
		SecurityGroupIDs: s.securityGroups, InstanceProfileARN: s.instanceProfile, IMDSv2Required: true, MetadataTags: true}
	if len(lts) > 0 {
		// A re-run that found its image finds the template made from it; an
		// image baked in this run adds a version, so the group's $Default
		// picks it up (the group follows $Latest).
		if !freshImage {
			return Item{Kind: "launch-template", ID: lts[0].ID, Note: fmt.Sprintf("found %s version %d", s.Template, lts[0].DefaultVersion)}, nil
		}
		if !r.write(s, fmt.Sprintf("ec2:CreateLaunchTemplateVersion LaunchTemplateName=%s ImageId=%s", s.Template, imageID)) {
			return Item{Kind: "launch-template", ID: lts[0].ID, Note: "new version (dry run)"}, nil
		}
		lt, err := r.Cloud.CreateLaunchTemplateVersion(ctx, s.Template, spec)
		if err != nil {
			return Item{}, fmt.Errorf("create launch template version: %w", err)
		}
		return Item{Kind: "launch-template", ID: lt.ID, Created: true, Note: fmt.Sprintf("%s version %d", s.Template, lt.DefaultVersion)}, nil
	}
	if !r.write(s, fmt.Sprintf("ec2:CreateLaunchTemplate LaunchTemplateName=%s ImageId=%s", s.Template, imageID)) {
		return Item{Kind: "launch-template", ID: "(new)", Note: s.Template}, nil
	}
	lt, err := r.Cloud.CreateLaunchTemplate(ctx, spec)
	if err != nil {
		return Item{}, fmt.Errorf("create launch template %s: %w", s.Template, err)
	}
	return Item{Kind: "launch-template", ID: lt.ID, Created: true, Note: s.Template}, nil
}

func (r *Runner) coordinators(ctx context.Context, s *Spec) (string, error) {
	addrs := s.Coordinators
	if len(addrs) == 0 {
		var err error
		if addrs, err = r.Control.Coordinators(ctx); err != nil {
			return "", fmt.Errorf("list coordinators for the %s tag: %w", CoordinatorsTag, err)
		}
	}
	addrs = append([]string(nil), addrs...)
	sort.Strings(addrs)
	return strings.Join(addrs, ","), nil
}

func (r *Runner) group(ctx context.Context, s *Spec, templateID string) (Item, error) {
	gs, err := r.Cloud.DescribeGroups(ctx, []string{s.ASG})
	if err != nil {
		return Item{}, fmt.Errorf("describe group %s: %w", s.ASG, err)
	}
	if len(gs) > 0 {
		return Item{Kind: "auto-scaling-group", ID: s.ASG, Note: fmt.Sprintf("found; desired %d", gs[0].Desired)}, nil
	}
	coords, err := r.coordinators(ctx, s)
	if err != nil {
		return Item{}, err
	}
	if !r.write(s, fmt.Sprintf("autoscaling:CreateAutoScalingGroup AutoScalingGroupName=%s LaunchTemplate=%s VPCZoneIdentifier=%s MinSize=%d MaxSize=%d DesiredCapacity=%d Tags=%s=%s(PropagateAtLaunch)",
		s.ASG, s.Template, strings.Join(s.Subnets, ","), s.Min, s.Max, s.Desired, CoordinatorsTag, coords)) {
		return Item{Kind: "auto-scaling-group", ID: s.ASG, Note: "(dry run)"}, nil
	}
	err = r.Cloud.CreateGroup(ctx, cloud.GroupSpec{
		Name: s.ASG, Min: s.Min, Max: s.Max, Desired: s.Desired,
		LaunchTemplate: cloud.TemplateRef{ID: templateID, Version: "$Latest"},
		SubnetIDs:      s.Subnets, HealthCheckGrace: s.HealthCheckGrace,
		Tags: map[string]string{CoordinatorsTag: coords, "shoal:fleet": s.Fleet},
	})
	if err != nil {
		return Item{}, fmt.Errorf("create group %s: %w", s.ASG, err)
	}
	return Item{Kind: "auto-scaling-group", ID: s.ASG, Created: true, Note: fmt.Sprintf("%d-%d in %s", s.Min, s.Max, strings.Join(s.Subnets, ","))}, nil
}

func (r *Runner) hook(ctx context.Context, s *Spec) (Item, error) {
	it := Item{Kind: "lifecycle-hook", ID: s.HookName, Note: cloud.TransitionTerminating}
	if !s.DryRun {
		hooks, err := r.Cloud.DescribeLifecycleHooks(ctx, s.ASG)
		if err != nil {
			return Item{}, fmt.Errorf("describe lifecycle hooks of %s: %w", s.ASG, err)
		}
		for _, h := range hooks {
			if h.Name == s.HookName && h.Transition == cloud.TransitionTerminating {
				it.Note = "found " + it.Note
				return it, nil
			}
		}
	}
	if !r.write(s, fmt.Sprintf("autoscaling:PutLifecycleHook AutoScalingGroupName=%s LifecycleHookName=%s LifecycleTransition=%s HeartbeatTimeout=%d",
		s.ASG, s.HookName, cloud.TransitionTerminating, int(s.HookHeartbeat/time.Second))) {
		return it, nil
	}
	err := r.Cloud.PutLifecycleHook(ctx, cloud.LifecycleHook{Name: s.HookName, Group: s.ASG, Transition: cloud.TransitionTerminating,
		HeartbeatTimeout: s.HookHeartbeat, DefaultResult: cloud.ResultContinue})
	if err != nil {
		return Item{}, fmt.Errorf("put lifecycle hook on %s: %w", s.ASG, err)
	}
	it.Created = true
	return it, nil
}

// warmPool puts the group's warm pool unless it has one already (an
// existing pool is left as it is: a re-run never resizes it).
func (r *Runner) warmPool(ctx context.Context, s *Spec) (Item, error) {
	it := Item{Kind: "warm-pool", ID: s.ASG, Note: fmt.Sprintf("min %d, %s", s.WarmPoolMin, s.WarmPoolState)}
	if !s.DryRun {
		wp, err := r.Cloud.DescribeWarmPool(ctx, s.ASG)
		if err != nil {
			return Item{}, fmt.Errorf("describe warm pool of %s: %w", s.ASG, err)
		}
		if wp != nil {
			it.Note = fmt.Sprintf("found: min %d, %s", wp.MinSize, wp.PoolState)
			return it, nil
		}
	}
	if !r.write(s, fmt.Sprintf("autoscaling:PutWarmPool AutoScalingGroupName=%s MinSize=%d PoolState=%s", s.ASG, s.WarmPoolMin, s.WarmPoolState)) {
		return it, nil
	}
	if err := r.Cloud.PutWarmPool(ctx, cloud.WarmPoolSpec{Group: s.ASG, MinSize: s.WarmPoolMin, PoolState: s.WarmPoolState}); err != nil {
		return Item{}, fmt.Errorf("put warm pool on %s: %w", s.ASG, err)
	}
	it.Created = true
	return it, nil
}

func (r *Runner) fleet(ctx context.Context, s *Spec) ([]Item, error) {
	if s.DryRun {
		fmt.Fprintf(r.Out, "would create or update fleet %s (group %s, %d-%d, app port %d) and set its policy\n", s.Fleet, s.ASG, s.Min, s.Max, s.AppPort)
		return []Item{{Kind: "fleet", ID: s.Fleet, Note: "(dry run)"}}, nil
	}
	var items []Item
	f, err := r.Control.GetFleet(ctx, s.Fleet)
	switch {
	case status.Code(err) == codes.NotFound:
		f, err = r.Control.CreateFleet(ctx, &shoalv1.Fleet{Name: s.Fleet, Asg: s.ASG, Min: s.Min, Max: s.Max, Desired: s.Desired, AppPort: s.AppPort})
		if err != nil {
			return nil, fmt.Errorf("create fleet %s: %w", s.Fleet, err)
		}
		items = append(items, Item{Kind: "fleet", ID: f.Name, Created: true, Note: "group " + f.Asg})
	case err != nil:
		return nil, fmt.Errorf("get fleet %s: %w", s.Fleet, err)
	case f.Asg != s.ASG:
		return nil, fmt.Errorf("%w: fleet %s already drives group %s, not %s", ErrInvalid, s.Fleet, f.Asg, s.ASG)
	default:
		f, err = r.Control.UpdateFleet(ctx, &shoalv1.UpdateFleetRequest{
			Fleet:      &shoalv1.Fleet{Name: s.Fleet, Min: s.Min, Max: s.Max, AppPort: s.AppPort},
			UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"min", "max", "app_port"}},
		})
		if err != nil {
			return nil, fmt.Errorf("update fleet %s: %w", s.Fleet, err)
		}
		items = append(items, Item{Kind: "fleet", ID: f.Name, Note: "found; bounds and app port updated"})
	}
	if s.Policy != nil {
		if _, err := r.Control.SetPolicy(ctx, s.Fleet, s.Policy); err != nil {
			return items, fmt.Errorf("set policy of %s: %w", s.Fleet, err)
		}
		var ms []string
		for _, t := range s.Policy.TargetTracking {
			ms = append(ms, fmt.Sprintf("%s=%g", t.Metric, t.Target))
		}
		items = append(items, Item{Kind: "policy", ID: s.Fleet, Created: true, Note: "target tracking " + strings.Join(ms, ", ")})
	}
	return items, nil
}
