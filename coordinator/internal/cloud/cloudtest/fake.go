package cloudtest

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
)

var _ cloud.Cloud = (*Fake)(nil)

// ErrUnexpectedCall is returned by a method whose function field is nil.
var ErrUnexpectedCall = errors.New("cloudtest: unexpected call")

// Call is one recorded call: the method name and its arguments (without the
// context), in order.
type Call struct {
	Method string
	Args   []any
}

// Fake implements cloud.Cloud by calling its function fields. It is safe for
// concurrent use; the function fields must be set before the first call.
type Fake struct {
	mu                                 sync.Mutex
	calls                              []Call
	DescribeGroupsFunc                 func(ctx context.Context, names []string) ([]cloud.Group, error)
	SetDesiredCapacityFunc             func(ctx context.Context, group string, desired int32) error
	TerminateInstanceFunc              func(ctx context.Context, instanceID string, decrement bool) (cloud.Activity, error)
	SetInstanceProtectionFunc          func(ctx context.Context, group string, instanceIDs []string, protected bool) error
	ActiveInstanceRefreshFunc          func(ctx context.Context, group string) (*cloud.InstanceRefresh, error)
	DescribeScalingActivitiesFunc      func(ctx context.Context, group string, max int32) ([]cloud.Activity, error)
	PutLifecycleHookFunc               func(ctx context.Context, hook cloud.LifecycleHook) error
	DescribeLifecycleHooksFunc         func(ctx context.Context, group string) ([]cloud.LifecycleHook, error)
	CompleteLifecycleActionFunc        func(ctx context.Context, action cloud.LifecycleAction, result string) error
	RecordLifecycleActionHeartbeatFunc func(ctx context.Context, action cloud.LifecycleAction) error
	RunInstancesFunc                   func(ctx context.Context, spec cloud.RunSpec) ([]cloud.EC2Instance, error)
	DescribeInstancesFunc              func(ctx context.Context, ids []string) ([]cloud.EC2Instance, error)
	TerminateInstancesFunc             func(ctx context.Context, ids []string) error
	CreateImageFunc                    func(ctx context.Context, spec cloud.ImageSpec) (string, error)
	DescribeImagesFunc                 func(ctx context.Context, q cloud.ImageQuery) ([]cloud.Image, error)
	CreateLaunchTemplateFunc           func(ctx context.Context, spec cloud.LaunchTemplateSpec) (cloud.LaunchTemplate, error)
	CreateLaunchTemplateVersionFunc    func(ctx context.Context, template string, spec cloud.LaunchTemplateSpec) (cloud.LaunchTemplate, error)
	DescribeLaunchTemplatesFunc        func(ctx context.Context, names []string) ([]cloud.LaunchTemplate, error)
	CreateGroupFunc                    func(ctx context.Context, spec cloud.GroupSpec) error
	UpdateGroupFunc                    func(ctx context.Context, upd cloud.GroupUpdate) error
	DescribeSubnetsFunc                func(ctx context.Context, q cloud.SubnetQuery) ([]cloud.Subnet, error)
}

func (f *Fake) record(method string, args ...any) {
	f.mu.Lock()
	f.calls = append(f.calls, Call{Method: method, Args: args})
	f.mu.Unlock()
}

// Calls returns a copy of the calls so far.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.calls...)
}

// CallsTo returns the calls to method, in order.
func (f *Fake) CallsTo(method string) []Call {
	var out []Call
	for _, c := range f.Calls() {
		if c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// Reset forgets the recorded calls.
func (f *Fake) Reset() {
	f.mu.Lock()
	f.calls = nil
	f.mu.Unlock()
}

func unexpected(method string) error { return fmt.Errorf("%w to %s", ErrUnexpectedCall, method) }

// DescribeGroups implements cloud.Cloud.
func (f *Fake) DescribeGroups(ctx context.Context, names []string) ([]cloud.Group, error) {
	f.record("DescribeGroups", names)
	if f.DescribeGroupsFunc == nil {
		var zero []cloud.Group
		return zero, unexpected("DescribeGroups")
	}
	return f.DescribeGroupsFunc(ctx, names)
}

// SetDesiredCapacity implements cloud.Cloud.
func (f *Fake) SetDesiredCapacity(ctx context.Context, group string, desired int32) error {
	f.record("SetDesiredCapacity", group, desired)
	if f.SetDesiredCapacityFunc == nil {
		return unexpected("SetDesiredCapacity")
	}
	return f.SetDesiredCapacityFunc(ctx, group, desired)
}

// TerminateInstance implements cloud.Cloud.
func (f *Fake) TerminateInstance(ctx context.Context, instanceID string, decrement bool) (cloud.Activity, error) {
	f.record("TerminateInstance", instanceID, decrement)
	if f.TerminateInstanceFunc == nil {
		var zero cloud.Activity
		return zero, unexpected("TerminateInstance")
	}
	return f.TerminateInstanceFunc(ctx, instanceID, decrement)
}

// SetInstanceProtection implements cloud.Cloud.
func (f *Fake) SetInstanceProtection(ctx context.Context, group string, instanceIDs []string, protected bool) error {
	f.record("SetInstanceProtection", group, instanceIDs, protected)
	if f.SetInstanceProtectionFunc == nil {
		return unexpected("SetInstanceProtection")
	}
	return f.SetInstanceProtectionFunc(ctx, group, instanceIDs, protected)
}

// ActiveInstanceRefresh implements cloud.Cloud.
func (f *Fake) ActiveInstanceRefresh(ctx context.Context, group string) (*cloud.InstanceRefresh, error) {
	f.record("ActiveInstanceRefresh", group)
	if f.ActiveInstanceRefreshFunc == nil {
		var zero *cloud.InstanceRefresh
		return zero, unexpected("ActiveInstanceRefresh")
	}
	return f.ActiveInstanceRefreshFunc(ctx, group)
}

// DescribeScalingActivities implements cloud.Cloud.
func (f *Fake) DescribeScalingActivities(ctx context.Context, group string, max int32) ([]cloud.Activity, error) {
	f.record("DescribeScalingActivities", group, max)
	if f.DescribeScalingActivitiesFunc == nil {
		var zero []cloud.Activity
		return zero, unexpected("DescribeScalingActivities")
	}
	return f.DescribeScalingActivitiesFunc(ctx, group, max)
}

// PutLifecycleHook implements cloud.Cloud.
func (f *Fake) PutLifecycleHook(ctx context.Context, hook cloud.LifecycleHook) error {
	f.record("PutLifecycleHook", hook)
	if f.PutLifecycleHookFunc == nil {
		return unexpected("PutLifecycleHook")
	}
	return f.PutLifecycleHookFunc(ctx, hook)
}

// DescribeLifecycleHooks implements cloud.Cloud.
func (f *Fake) DescribeLifecycleHooks(ctx context.Context, group string) ([]cloud.LifecycleHook, error) {
	f.record("DescribeLifecycleHooks", group)
	if f.DescribeLifecycleHooksFunc == nil {
		var zero []cloud.LifecycleHook
		return zero, unexpected("DescribeLifecycleHooks")
	}
	return f.DescribeLifecycleHooksFunc(ctx, group)
}

// CompleteLifecycleAction implements cloud.Cloud.
func (f *Fake) CompleteLifecycleAction(ctx context.Context, action cloud.LifecycleAction, result string) error {
	f.record("CompleteLifecycleAction", action, result)
	if f.CompleteLifecycleActionFunc == nil {
		return unexpected("CompleteLifecycleAction")
	}
	return f.CompleteLifecycleActionFunc(ctx, action, result)
}

// RecordLifecycleActionHeartbeat implements cloud.Cloud.
func (f *Fake) RecordLifecycleActionHeartbeat(ctx context.Context, action cloud.LifecycleAction) error {
	f.record("RecordLifecycleActionHeartbeat", action)
	if f.RecordLifecycleActionHeartbeatFunc == nil {
		return unexpected("RecordLifecycleActionHeartbeat")
	}
	return f.RecordLifecycleActionHeartbeatFunc(ctx, action)
}

// RunInstances implements cloud.Cloud.
func (f *Fake) RunInstances(ctx context.Context, spec cloud.RunSpec) ([]cloud.EC2Instance, error) {
	f.record("RunInstances", spec)
	if f.RunInstancesFunc == nil {
		var zero []cloud.EC2Instance
		return zero, unexpected("RunInstances")
	}
	return f.RunInstancesFunc(ctx, spec)
}

// DescribeInstances implements cloud.Cloud.
func (f *Fake) DescribeInstances(ctx context.Context, ids []string) ([]cloud.EC2Instance, error) {
	f.record("DescribeInstances", ids)
	if f.DescribeInstancesFunc == nil {
		var zero []cloud.EC2Instance
		return zero, unexpected("DescribeInstances")
	}
	return f.DescribeInstancesFunc(ctx, ids)
}

// TerminateInstances implements cloud.Cloud.
func (f *Fake) TerminateInstances(ctx context.Context, ids []string) error {
	f.record("TerminateInstances", ids)
	if f.TerminateInstancesFunc == nil {
		return unexpected("TerminateInstances")
	}
	return f.TerminateInstancesFunc(ctx, ids)
}

// CreateImage implements cloud.Cloud.
func (f *Fake) CreateImage(ctx context.Context, spec cloud.ImageSpec) (string, error) {
	f.record("CreateImage", spec)
	if f.CreateImageFunc == nil {
		var zero string
		return zero, unexpected("CreateImage")
	}
	return f.CreateImageFunc(ctx, spec)
}

// DescribeImages implements cloud.Cloud.
func (f *Fake) DescribeImages(ctx context.Context, q cloud.ImageQuery) ([]cloud.Image, error) {
	f.record("DescribeImages", q)
	if f.DescribeImagesFunc == nil {
		var zero []cloud.Image
		return zero, unexpected("DescribeImages")
	}
	return f.DescribeImagesFunc(ctx, q)
}

// CreateLaunchTemplate implements cloud.Cloud.
func (f *Fake) CreateLaunchTemplate(ctx context.Context, spec cloud.LaunchTemplateSpec) (cloud.LaunchTemplate, error) {
	f.record("CreateLaunchTemplate", spec)
	if f.CreateLaunchTemplateFunc == nil {
		var zero cloud.LaunchTemplate
		return zero, unexpected("CreateLaunchTemplate")
	}
	return f.CreateLaunchTemplateFunc(ctx, spec)
}

// CreateLaunchTemplateVersion implements cloud.Cloud.
func (f *Fake) CreateLaunchTemplateVersion(ctx context.Context, template string, spec cloud.LaunchTemplateSpec) (cloud.LaunchTemplate, error) {
	f.record("CreateLaunchTemplateVersion", template, spec)
	if f.CreateLaunchTemplateVersionFunc == nil {
		var zero cloud.LaunchTemplate
		return zero, unexpected("CreateLaunchTemplateVersion")
	}
	return f.CreateLaunchTemplateVersionFunc(ctx, template, spec)
}

// DescribeLaunchTemplates implements cloud.Cloud.
func (f *Fake) DescribeLaunchTemplates(ctx context.Context, names []string) ([]cloud.LaunchTemplate, error) {
	f.record("DescribeLaunchTemplates", names)
	if f.DescribeLaunchTemplatesFunc == nil {
		var zero []cloud.LaunchTemplate
		return zero, unexpected("DescribeLaunchTemplates")
	}
	return f.DescribeLaunchTemplatesFunc(ctx, names)
}

// CreateGroup implements cloud.Cloud.
func (f *Fake) CreateGroup(ctx context.Context, spec cloud.GroupSpec) error {
	f.record("CreateGroup", spec)
	if f.CreateGroupFunc == nil {
		return unexpected("CreateGroup")
	}
	return f.CreateGroupFunc(ctx, spec)
}

// UpdateGroup implements cloud.Cloud.
func (f *Fake) UpdateGroup(ctx context.Context, upd cloud.GroupUpdate) error {
	f.record("UpdateGroup", upd)
	if f.UpdateGroupFunc == nil {
		return unexpected("UpdateGroup")
	}
	return f.UpdateGroupFunc(ctx, upd)
}

// DescribeSubnets implements cloud.Cloud.
func (f *Fake) DescribeSubnets(ctx context.Context, q cloud.SubnetQuery) ([]cloud.Subnet, error) {
	f.record("DescribeSubnets", q)
	if f.DescribeSubnetsFunc == nil {
		var zero []cloud.Subnet
		return zero, unexpected("DescribeSubnets")
	}
	return f.DescribeSubnetsFunc(ctx, q)
}
