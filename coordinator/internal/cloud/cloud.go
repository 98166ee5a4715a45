package cloud

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// MaxGroupsPerDescribe is how many group names one DescribeAutoScalingGroups
// call accepts; implementations split longer lists into batches of this size.
const MaxGroupsPerDescribe = 100

// Lifecycle hook transitions and results, as Auto Scaling spells them.
const (
	TransitionTerminating = "autoscaling:EC2_INSTANCE_TERMINATING"
	TransitionLaunching   = "autoscaling:EC2_INSTANCE_LAUNCHING"
	ResultContinue        = "CONTINUE"
	ResultAbandon         = "ABANDON"
)

// Shoal's drain hook: `fleet bootstrap` puts it on a new group and the
// scaler keeps it there, so both must agree on its name. Its heartbeat
// timeout defaults to DrainHookHeartbeat; one set in the range AWS accepts
// (MinHookHeartbeat to MaxHookHeartbeat) is kept.
const (
	DrainHookName      = "shoal-drain"
	DrainHookHeartbeat = time.Minute
	MinHookHeartbeat   = 30 * time.Second
	MaxHookHeartbeat   = 7200 * time.Second
)

// Instance lifecycle states of an Auto Scaling group that the scaler reads.
const (
	LifecyclePending         = "Pending"
	LifecyclePendingWait     = "Pending:Wait"
	LifecycleInService       = "InService"
	LifecycleTerminating     = "Terminating"
	LifecycleTerminatingWait = "Terminating:Wait"
	LifecycleTerminated      = "Terminated"
	HealthHealthy            = "Healthy"
	HealthUnhealthy          = "Unhealthy"
)

// Processes whose suspension blocks scale-in: with them suspended, the group
// would not launch, replace or terminate the way Shoal expects.
var ScaleInBlockingProcesses = []string{"Launch", "Terminate", "ReplaceUnhealthy", "AZRebalance"}

// Scaling is what the leader-only scaler and the lifecycle-hook watcher call.
type Scaling interface {
	// DescribeGroups returns the named groups, in no particular order. A name
	// that matches no group is simply absent from the result (callers flag it
	// with ErrGroupNotFound themselves); names are sent up to
	// MaxGroupsPerDescribe per call, following pagination.
	DescribeGroups(ctx context.Context, names []string) ([]Group, error)
	// SetDesiredCapacity sets the group's desired capacity without honouring
	// cooldowns: Shoal does its own stabilisation.
	SetDesiredCapacity(ctx context.Context, group string, desired int32) error
	// TerminateInstance terminates one instance of its group. With
	// decrement, the group's desired capacity goes down by one, so the group
	// does not launch a replacement.
	TerminateInstance(ctx context.Context, instanceID string, decrement bool) (Activity, error)
	// SetInstanceProtection sets or clears scale-in protection.
	SetInstanceProtection(ctx context.Context, group string, instanceIDs []string, protected bool) error
	// ActiveInstanceRefresh returns the group's instance refresh that is
	// still running (pending, in progress, baking, cancelling or rolling
	// back), or nil when there is none. It is a call of its own, not a field
	// of Group, because it costs one API call per group: the scaler asks only
	// before a scale-in.
	ActiveInstanceRefresh(ctx context.Context, group string) (*InstanceRefresh, error)
	// DescribeScalingActivities returns the group's most recent activities,
	// newest first, at most max (1..100).
	DescribeScalingActivities(ctx context.Context, group string, max int32) ([]Activity, error)
	// PutLifecycleHook creates or updates a lifecycle hook.
	PutLifecycleHook(ctx context.Context, hook LifecycleHook) error
	// DescribeLifecycleHooks returns the group's lifecycle hooks.
	DescribeLifecycleHooks(ctx context.Context, group string) ([]LifecycleHook, error)
	// CompleteLifecycleAction ends an instance's wait in a hook with result
	// (ResultContinue or ResultAbandon).
	CompleteLifecycleAction(ctx context.Context, action LifecycleAction, result string) error
	// RecordLifecycleActionHeartbeat restarts the hook's heartbeat timeout.
	RecordLifecycleActionHeartbeat(ctx context.Context, action LifecycleAction) error
}

// Bootstrap is what `shoal-coordinator bootstrap` calls to bake an image and
// create a fleet's launch template and group.
type Bootstrap interface {
	RunInstances(ctx context.Context, spec RunSpec) ([]EC2Instance, error)
	DescribeInstances(ctx context.Context, ids []string) ([]EC2Instance, error)
	// TerminateInstances ends standalone instances, such as the builder an
	// image was baked on; it is not for group members (see TerminateInstance).
	TerminateInstances(ctx context.Context, ids []string) error
	CreateImage(ctx context.Context, spec ImageSpec) (string, error)
	DescribeImages(ctx context.Context, q ImageQuery) ([]Image, error)
	CreateLaunchTemplate(ctx context.Context, spec LaunchTemplateSpec) (LaunchTemplate, error)
	// CreateLaunchTemplateVersion adds a version (a new image, say) and makes
	// it the default, so groups on $Default pick it up.
	CreateLaunchTemplateVersion(ctx context.Context, template string, spec LaunchTemplateSpec) (LaunchTemplate, error)
	// DescribeLaunchTemplates returns the named templates; unknown names are
	// absent from the result rather than an error.
	DescribeLaunchTemplates(ctx context.Context, names []string) ([]LaunchTemplate, error)
	CreateGroup(ctx context.Context, spec GroupSpec) error
	UpdateGroup(ctx context.Context, upd GroupUpdate) error
	DescribeSubnets(ctx context.Context, q SubnetQuery) ([]Subnet, error)
}

// Cloud is everything Shoal asks of a cloud.
type Cloud interface {
	Scaling
	Bootstrap
}

// Teardown removes what `fleet bootstrap` made (`fleet delete --purge`). It
// runs in the operator's CLI with the operator's credentials, never in the
// coordinator, whose role may delete nothing.
type Teardown interface {
	DescribeGroups(ctx context.Context, names []string) ([]Group, error)
	// DeleteGroup force-deletes a group: AWS terminates its instances
	// first, and the group stays visible (Status "Delete in progress")
	// until they are gone.
	DeleteGroup(ctx context.Context, name string) error
	DescribeLaunchTemplates(ctx context.Context, names []string) ([]LaunchTemplate, error)
	DeleteLaunchTemplate(ctx context.Context, name string) error
	DescribeImages(ctx context.Context, q ImageQuery) ([]Image, error)
	// DeregisterImage leaves the image's EBS snapshots behind; delete them
	// with DeleteSnapshot.
	DeregisterImage(ctx context.Context, id string) error
	DeleteSnapshot(ctx context.Context, id string) error
}

// Group is an Auto Scaling group as the scaler sees it.
type Group struct {
	Name                string
	Min, Max, Desired   int32
	Instances           []Instance
	SuspendedProcesses  []string
	AvailabilityZones   []string
	SubnetIDs           []string
	LaunchTemplate      *TemplateRef
	HealthCheckGrace    time.Duration
	NewInstancesProtect bool
	// CapacityRebalance says Auto Scaling itself launches a replacement
	// when an instance gets a rebalance recommendation or interruption
	// notice, so Shoal must not launch a second one.
	CapacityRebalance bool
	Tags              map[string]string
	// Status is set only while the group is being deleted.
	Status  string
	Created time.Time
}

// Suspended reports whether process is suspended on the group.
func (g Group) Suspended(process string) bool {
	for _, p := range g.SuspendedProcesses {
		if p == process {
			return true
		}
	}
	return false
}

// ScaleInBlockedBy returns the suspended processes that make a scale-in
// unsafe, or nil.
func (g Group) ScaleInBlockedBy() []string {
	var out []string
	for _, p := range ScaleInBlockingProcesses {
		if g.Suspended(p) {
			out = append(out, p)
		}
	}
	return out
}

// Instance is one member of a group.
type Instance struct {
	ID             string
	AZ             string
	LifecycleState string
	Health         string
	Protected      bool
	InstanceType   string
	LaunchTemplate *TemplateRef
}

// TemplateRef names a launch template (by ID or name) and a version
// ("$Latest", "$Default" or a number).
type TemplateRef struct {
	ID, Name, Version string
}

// Activity is one scaling activity of a group.
type Activity struct {
	ID          string
	Group       string
	Description string
	Cause       string
	// Status is Auto Scaling's StatusCode: Successful, Failed, Cancelled,
	// InProgress, WaitingForSpotInstanceId, PreInService, ...
	Status        string
	StatusMessage string
	Progress      int32
	Start, End    time.Time
}

// Failed reports whether the activity ended in failure.
func (a Activity) Failed() bool { return a.Status == "Failed" }

// InstanceRefresh is a running instance refresh.
type InstanceRefresh struct {
	ID     string
	Status string
	Start  time.Time
}

// LifecycleHook is a hook on a group's launch or terminate transition.
type LifecycleHook struct {
	Name       string
	Group      string
	Transition string
	// HeartbeatTimeout is how long an instance waits before DefaultResult
	// applies, unless a heartbeat restarts it.
	HeartbeatTimeout time.Duration
	DefaultResult    string
	GlobalTimeout    time.Duration
	Metadata         string
}

// LifecycleAction names one instance waiting in a hook. Either Token or
// InstanceID identifies it.
type LifecycleAction struct {
	Group, Hook, InstanceID, Token string
}

// RunSpec describes standalone instances to launch.
type RunSpec struct {
	ImageID        string
	InstanceType   string
	SubnetID       string
	LaunchTemplate *TemplateRef
	// UserData is the raw script; implementations base64-encode it.
	UserData string
	Count    int32
	Tags     map[string]string
}

// EC2Instance is an instance as EC2 describes it.
type EC2Instance struct {
	ID         string
	State      string
	ImageID    string
	Type       string
	AZ         string
	SubnetID   string
	PrivateIP  string
	LaunchTime time.Time
	Tags       map[string]string
	// SecurityGroupIDs and InstanceProfileARN are what a launch template
	// baked from this instance should give its instances too.
	SecurityGroupIDs   []string
	InstanceProfileARN string
}

// ImageSpec bakes an image from a running (or stopped) instance.
type ImageSpec struct {
	InstanceID  string
	Name        string
	Description string
	Tags        map[string]string
}

// ImageQuery selects images; empty fields do not filter.
type ImageQuery struct {
	IDs   []string
	Names []string
	Tags  map[string]string
}

// Image is an AMI.
type Image struct {
	ID, Name, State string
	Created         time.Time
	Tags            map[string]string
	// SnapshotIDs are the EBS snapshots behind the image's volumes.
	SnapshotIDs []string
}

// LaunchTemplateSpec is the data of a launch template (version).
type LaunchTemplateSpec struct {
	Name         string
	Description  string
	ImageID      string
	InstanceType string
	// UserData is the raw script; implementations base64-encode it.
	UserData     string
	Tags         map[string]string
	InstanceTags map[string]string
	// SecurityGroupIDs and InstanceProfileARN are set on launched instances.
	SecurityGroupIDs   []string
	InstanceProfileARN string
	// IMDSv2Required requires session tokens for instance metadata;
	// MetadataTags exposes instance tags there (agents read their group and
	// coordinators from them); MetadataHopLimit 0 keeps the default.
	IMDSv2Required   bool
	MetadataTags     bool
	MetadataHopLimit int32
}

// LaunchTemplate is a launch template's identity and versions.
type LaunchTemplate struct {
	ID, Name       string
	DefaultVersion int64
	LatestVersion  int64
	Created        time.Time
}

// GroupSpec creates a group.
type GroupSpec struct {
	Name                  string
	Min, Max, Desired     int32
	LaunchTemplate        TemplateRef
	SubnetIDs             []string
	HealthCheckGrace      time.Duration
	DefaultInstanceWarmup time.Duration
	NewInstancesProtect   bool
	Tags                  map[string]string
}

// GroupUpdate changes a group; nil fields are left as they are.
type GroupUpdate struct {
	Name             string
	Min, Max         *int32
	Desired          *int32
	LaunchTemplate   *TemplateRef
	SubnetIDs        []string
	HealthCheckGrace *time.Duration
}

// SubnetQuery selects subnets; empty fields do not filter.
type SubnetQuery struct {
	IDs          []string
	VPCID        string
	DefaultForAZ bool
}

// Subnet is a VPC subnet.
type Subnet struct {
	ID, VPCID, AZ, CIDR string
	DefaultForAZ        bool
}

// GroupsByName indexes the result of DescribeGroups and reports, with
// ErrGroupNotFound, every asked-for name the cloud did not return.
func GroupsByName(asked []string, got []Group) (map[string]Group, error) {
	m := make(map[string]Group, len(got))
	for _, g := range got {
		m[g.Name] = g
	}
	var missing []string
	for _, n := range asked {
		if _, ok := m[n]; !ok {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		return m, fmt.Errorf("%w: %s", ErrGroupNotFound, strings.Join(missing, ", "))
	}
	return m, nil
}
