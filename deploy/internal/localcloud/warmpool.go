package localcloud

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// Warm pools, as https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-warm-pools.html
// describes them: instances launched and initialised beside the group
// (Warmed:Pending), then kept stopped or running (Warmed:Stopped,
// Warmed:Running, Warmed:Hibernated) until a scale-out takes them, which
// is faster than a new launch (Config.WarmBootDelay). They are not in
// service and not part of the desired capacity: DescribeAutoScalingGroups
// leaves them out of Instances and counts them in WarmPoolSize.

// Activity descriptions of warm-pool launches, as AWS words them.
const (
	warmLaunchDesc = "Launching a new EC2 instance from warm pool: "
	warmFillDesc   = "Launching a new EC2 instance into warm pool: "
)

// stateStopping is EC2's state while a warm-pool instance stops.
const stateStopping = "stopping"

// Pool states PutWarmPool accepts.
var poolStates = []string{"Stopped", "Running", "Hibernated"}

// WarmPool is a group's warm pool configuration. It is replaced, never
// changed in place, so a copy of the group can be read without the lock.
type WarmPool struct {
	MinSize int `json:"minSize"`
	// MaxPrepared is MaxGroupPreparedCapacity; -1 when not set.
	MaxPrepared    int    `json:"maxGroupPreparedCapacity"`
	PoolState      string `json:"poolState"`
	ReuseOnScaleIn bool   `json:"reuseOnScaleIn,omitempty"`
	Deleting       bool   `json:"deleting,omitempty"`
}

// warmInfo is an instance's warm-pool bookkeeping.
type warmInfo struct {
	start    time.Time // leaving the pool: the warm boot runs from here
	activity *Activity // the pool activity that ends when the instance settles
}

func isWarm(in *Instance) bool { return strings.HasPrefix(in.Lifecycle, "Warmed:") }

// WarmPoolInput is PutWarmPool's input; nil means not given.
type WarmPoolInput struct {
	MinSize, MaxPrepared *int
	PoolState            string
	ReuseOnScaleIn       *bool
}

// PutWarmPool creates or replaces a group's warm pool.
func (c *Cloud) PutWarmPool(group string, in WarmPoolInput) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.groupLocked(group)
	if err != nil {
		return err
	}
	wp := WarmPool{MaxPrepared: -1, PoolState: "Stopped"}
	if in.MinSize != nil {
		wp.MinSize = *in.MinSize
	}
	if in.MaxPrepared != nil {
		wp.MaxPrepared = *in.MaxPrepared
	}
	if in.PoolState != "" {
		wp.PoolState = in.PoolState
	}
	if in.ReuseOnScaleIn != nil {
		wp.ReuseOnScaleIn = *in.ReuseOnScaleIn
	}
	switch {
	case g.WarmPool != nil && g.WarmPool.Deleting:
		return validation("The warm pool of group %s is being deleted; wait until DescribeWarmPool no longer shows it", group)
	case wp.MinSize < 0:
		return validation("MinSize (%d) must be >= 0", wp.MinSize)
	case wp.MaxPrepared < -1:
		return validation("MaxGroupPreparedCapacity (%d) must be >= 0, or -1 to remove the value", wp.MaxPrepared)
	case wp.MaxPrepared >= 0 && wp.MinSize > wp.MaxPrepared:
		return validation("MinSize (%d) must not be greater than MaxGroupPreparedCapacity (%d)", wp.MinSize, wp.MaxPrepared)
	case !contains(poolStates, wp.PoolState):
		return validation("PoolState %q must be one of %s", wp.PoolState, strings.Join(poolStates, ", "))
	}
	g.WarmPool = &wp
	c.dirty = true
	c.poke()
	return nil
}

// DeleteWarmPool deletes a group's warm pool: its instances terminate, and
// the configuration goes when the last one has (at once with force).
func (c *Cloud) DeleteWarmPool(group string, force bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.groupLocked(group)
	if err != nil {
		return err
	}
	if g.WarmPool == nil {
		return validation("No warm pool found for Auto Scaling group %s", group)
	}
	wp := *g.WarmPool
	wp.Deleting = true
	g.WarmPool = &wp
	if force {
		for _, in := range c.warmLocked(group) {
			c.warmTerminateLocked(in, fmt.Sprintf("At %s an instance was taken out of service because its warm pool was deleted.", rfc3339(c.clock.Now())))
		}
		g.WarmPool = nil
	}
	c.dirty = true
	c.poke()
	return nil
}

// WarmPoolView is DescribeWarmPool's answer.
type WarmPoolView struct {
	Pool      *WarmPool
	Instances []Instance
}

// DescribeWarmPool lists a group's warm pool and its instances by id, at
// most max after the instance id after; it returns the next token.
func (c *Cloud) DescribeWarmPool(group string, max int, after string) (WarmPoolView, string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.groupLocked(group)
	if err != nil {
		return WarmPoolView{}, "", err
	}
	if max == 0 {
		max = 50
	}
	if max < 1 || max > 50 {
		return WarmPoolView{}, "", validation("MaxRecords (%d) must be between 1 and 50", max)
	}
	var v WarmPoolView
	if g.WarmPool != nil {
		wp := *g.WarmPool
		v.Pool = &wp
	}
	list := c.warmLocked(group)
	sort.Slice(list, func(i, j int) bool { return list[i].ID < list[j].ID })
	for _, in := range list {
		if after != "" && in.ID <= after {
			continue
		}
		if len(v.Instances) == max {
			return v, v.Instances[max-1].ID, nil
		}
		v.Instances = append(v.Instances, *in)
	}
	return v, "", nil
}

// WarmPoolSize is how many instances a group's warm pool holds.
func (c *Cloud) WarmPoolSize(group string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.warmLocked(group))
}

// warmLocked is a group's warm-pool instances, terminating ones included,
// oldest first.
func (c *Cloud) warmLocked(group string) []*Instance {
	var out []*Instance
	for _, in := range c.instances {
		if in.Group == group && isWarm(in) && in.State != stateTerminated {
			out = append(out, in)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].LaunchTime.Equal(out[j].LaunchTime) {
			return out[i].LaunchTime.Before(out[j].LaunchTime)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

func (c *Cloud) poolStateLocked(group string) string {
	if g := c.groups[group]; g != nil && g.WarmPool != nil {
		return g.WarmPool.PoolState
	}
	return "Stopped"
}

// warmTarget is the pool size AWS keeps: MaxGroupPreparedCapacity (else
// the group's MaxSize) minus the desired capacity, at least MinSize
// (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_PutWarmPool.html).
func warmTarget(g *Group) int {
	wp := g.WarmPool
	prepared := g.Max
	if wp.MaxPrepared >= 0 {
		prepared = wp.MaxPrepared
	}
	return max(prepared-g.Desired, wp.MinSize, 0)
}

// fromWarmPoolLocked takes a ready instance from g's pool into the group
// (running ones first, then the oldest), or returns nil.
func (c *Cloud) fromWarmPoolLocked(g *Group, cause string, now time.Time) *Instance {
	if g.WarmPool == nil || g.WarmPool.Deleting {
		return nil
	}
	var pick *Instance
	for _, in := range c.warmLocked(g.Name) {
		switch in.Lifecycle {
		case "Warmed:Running":
			if pick == nil || pick.Lifecycle != "Warmed:Running" {
				pick = in
			}
		case "Warmed:Stopped", "Warmed:Hibernated":
			if pick == nil {
				pick = in
			}
		}
	}
	if pick == nil {
		return nil
	}
	if pick.State == stateStopped {
		// Its workload starts once the warm boot is over (reconcile).
		pick.State, pick.LaunchTime = statePending, now
	}
	pick.Lifecycle, pick.Protected = "Pending", g.NewInstancesProtected
	pick.warm = warmInfo{start: now}
	a := c.newActivity(g.Name, warmLaunchDesc+pick.ID, cause)
	a.Details = fmt.Sprintf(`{"Subnet ID":%q,"Availability Zone":%q}`, pick.SubnetID, pick.AZ)
	a.Progress = 50
	c.log.Info("instance taken from warm pool", "instance", pick.ID, "group", g.Name)
	return pick
}

// returnToPoolLocked sends a scale-in victim back to the warm pool when the
// pool's InstanceReusePolicy says ReuseOnScaleIn.
func (c *Cloud) returnToPoolLocked(g *Group, in *Instance, now time.Time) bool {
	wp := g.WarmPool
	if wp == nil || wp.Deleting || !wp.ReuseOnScaleIn || in.Lifecycle != "InService" || in.State != stateRunning {
		return false
	}
	in.Lifecycle, in.hook, in.inServiceAt = "Warmed:Pending", nil, time.Time{}
	in.warm.activity = c.newActivity(g.Name, "Moving EC2 instance to warm pool: "+in.ID,
		g.scaleCause+fmt.Sprintf("At %s an instance was moved to the warm pool in response to a difference between desired and actual capacity, shrinking the capacity to %d.", rfc3339(now), g.Desired))
	c.log.Info("instance returned to warm pool", "instance", in.ID, "group", g.Name)
	return true
}

// warmTerminateLocked starts terminating a warm-pool instance.
func (c *Cloud) warmTerminateLocked(in *Instance, cause string) {
	if strings.HasPrefix(in.Lifecycle, "Warmed:Terminat") {
		return
	}
	c.endActivity(in.warm.activity, "Cancelled", "The instance left the warm pool before it was ready.")
	in.warm = warmInfo{}
	in.Lifecycle, in.hook = "Warmed:Terminating", nil
	in.termActivity = c.newActivity(in.Group, "Terminating EC2 instance: "+in.ID, cause)
}

// reconcileWarmInstanceLocked moves warm-pool instances, and instances
// leaving the pool, through their states; it reports whether it handled
// the instance (the generic lifecycle must then leave it alone).
func (c *Cloud) reconcileWarmInstanceLocked(in *Instance, now time.Time) bool {
	exited := in.proc != nil && in.proc.exited()
	if !in.warm.start.IsZero() && in.Lifecycle == "Pending" {
		if exited {
			in.warm.start = time.Time{} // the generic path finds it unhealthy
			return false
		}
		if now.Before(in.warm.start.Add(c.cfg.WarmBootDelay)) {
			return true
		}
		if !c.bootLocked(in) {
			in.warm.start = time.Time{} // unhealthy: the group replaces it
			return true
		}
		in.warm.start, in.State = time.Time{}, stateRunning
		c.enterServiceLocked(in, now)
		return true
	}
	switch in.Lifecycle {
	case "Warmed:Pending":
		if exited && in.State != stateStopping {
			in.Health = "Unhealthy"
			c.warmTerminateLocked(in, fmt.Sprintf("At %s an instance was taken out of service in response to an EC2 instance status check failure.", rfc3339(now)))
			return true
		}
		st := c.poolStateLocked(in.Group)
		if in.State == statePending {
			if now.Before(in.LaunchTime.Add(c.cfg.BootDelay)) {
				return true
			}
			// Only a pool kept running runs its workload; one kept
			// stopped goes straight from booted to stopped (the local
			// cloud has no first-boot setup for the workload to keep).
			if st == "Running" && !c.bootLocked(in) {
				c.warmTerminateLocked(in, fmt.Sprintf("At %s an instance was taken out of service in response to an EC2 instance status check failure.", rfc3339(now)))
				return true
			}
			in.State = stateRunning
		}
		if in.State == stateRunning {
			if st == "Running" {
				in.Lifecycle = "Warmed:Running"
				c.endActivity(in.warm.activity, "Successful", "")
				in.warm.activity = nil
				return true
			}
			c.stopLocked(in)
			in.State = stateStopping
		}
		if in.State == stateStopping && c.finishStopLocked(in) {
			in.proc, in.termStart, in.killed = nil, time.Time{}, false
			in.State, in.Lifecycle = stateStopped, "Warmed:"+st
			c.endActivity(in.warm.activity, "Successful", "")
			in.warm.activity = nil
		}
		return true
	case "Warmed:Stopped", "Warmed:Hibernated":
		return true
	case "Warmed:Running":
		if exited {
			in.Health = "Unhealthy"
			c.warmTerminateLocked(in, fmt.Sprintf("At %s an instance was taken out of service in response to an EC2 instance status check failure.", rfc3339(now)))
		}
		return true
	case "Warmed:Terminating":
		in.State = stateShuttingDown
		c.stopLocked(in)
		if c.finishStopLocked(in) {
			in.State, in.endTime, in.Lifecycle = stateTerminated, now, "Warmed:Terminated"
			if in.StateReason == "" {
				in.StateReason = "Client.UserInitiatedShutdown: User initiated shutdown"
			}
			c.endActivity(in.termActivity, "Successful", "")
			c.releaseLocked(in)
			c.log.Info("warm pool instance terminated", "instance", in.ID, "group", in.Group)
		}
		return true
	}
	return false
}

// reconcileWarmPoolsLocked keeps every pool at its size, and empties the
// pools of deleted groups and deleted pools.
func (c *Cloud) reconcileWarmPoolsLocked(now time.Time) {
	names := map[string]bool{}
	for n := range c.groups {
		names[n] = true
	}
	for _, in := range c.instances {
		if isWarm(in) && in.State != stateTerminated {
			names[in.Group] = true
		}
	}
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, name := range sorted {
		g := c.groups[name]
		all := c.warmLocked(name)
		var warm []*Instance
		for _, in := range all {
			if !strings.HasPrefix(in.Lifecycle, "Warmed:Terminat") {
				warm = append(warm, in)
			}
		}
		if g == nil || g.Deleting || g.WarmPool == nil || g.WarmPool.Deleting {
			for _, in := range warm {
				c.warmTerminateLocked(in, fmt.Sprintf("At %s an instance was taken out of service because its warm pool was deleted.", rfc3339(now)))
			}
			if g != nil && g.WarmPool != nil && g.WarmPool.Deleting && len(all) == 0 {
				g.WarmPool, c.dirty = nil, true
			}
			continue
		}
		target := warmTarget(g)
		switch {
		case len(warm) < target && !g.suspended("Launch") && !now.Before(g.nextLaunch):
			for n := len(warm); n < target; n++ {
				in := c.fillWarmPoolLocked(g, warm, target, now)
				if in == nil {
					g.nextLaunch = now.Add(c.cfg.LaunchRetry)
					break
				}
				warm = append(warm, in)
			}
		case len(warm) > target:
			// The newest go first: the oldest are the most likely ready.
			for _, in := range warm[target:] {
				c.warmTerminateLocked(in, fmt.Sprintf("At %s an instance was taken out of service in order to keep the warm pool at its size of %d.", rfc3339(now), target))
			}
		}
	}
}

// fillWarmPoolLocked launches one instance into g's warm pool.
func (c *Cloud) fillWarmPoolLocked(g *Group, warm []*Instance, target int, now time.Time) *Instance {
	cause := fmt.Sprintf("At %s an instance was launched into the warm pool to keep it at its size of %d.", rfc3339(now), target)
	spec, msg := c.groupSpecLocked(g, warm)
	var in *Instance
	if msg == "" {
		var err error
		if in, err = c.launchLocked(spec); err != nil {
			msg = err.Error()
		}
	}
	if msg != "" {
		a := c.newActivity(g.Name, "Launching a new EC2 instance into warm pool.  Status Reason: "+msg, cause)
		c.endActivity(a, "Failed", msg)
		return nil
	}
	in.Lifecycle = "Warmed:Pending"
	in.warm.activity = c.newActivity(g.Name, warmFillDesc+in.ID, cause)
	in.warm.activity.Details = fmt.Sprintf(`{"Subnet ID":%q,"Availability Zone":%q}`, in.SubnetID, in.AZ)
	in.warm.activity.Progress = 50
	return in
}

// terminateWarm is TerminateInstanceInAutoScalingGroup for a warm-pool
// instance: it leaves the pool (which refills) and, not being part of the
// desired capacity, never changes it. ok is false for other instances.
func (c *Cloud) terminateWarm(id string) (a Activity, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	in := c.instances[id]
	if in == nil || !isWarm(in) || in.State == stateTerminated {
		return Activity{}, false
	}
	c.warmTerminateLocked(in, fmt.Sprintf("At %s instance %s was taken out of the warm pool in response to a user request.", rfc3339(c.clock.Now()), id))
	c.poke()
	return *in.termActivity, true
}
