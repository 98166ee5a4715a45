package localcloud

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// terminatedRetention is how long a terminated instance stays visible in
// DescribeInstances, as EC2 keeps them for about an hour.
const terminatedRetention = time.Hour

// Run reconciles groups and instances and evaluates alarms until ctx ends.
func (c *Cloud) Run(ctx context.Context) {
	rt := time.NewTicker(c.cfg.ReconcileInterval)
	defer rt.Stop()
	at := time.NewTicker(c.cfg.AlarmInterval)
	defer at.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-rt.C:
			c.Reconcile()
		case <-c.kick:
			c.Reconcile()
		case <-at.C:
			c.EvaluateAlarms()
		}
	}
}

// Reconcile runs one pass: boot, health, lifecycle waits, termination and
// desired capacity. It is what the real Auto Scaling control loop does.
func (c *Cloud) Reconcile() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return
	}
	defer c.passDoneLocked()
	now := c.clock.Now()
	// Notices first, so an instance interrupted now is replaced in this pass.
	c.reconcileNoticesLocked(now)
	ids := make([]string, 0, len(c.instances))
	for id := range c.instances {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		c.reconcileInstanceLocked(c.instances[id], now)
	}
	names := make([]string, 0, len(c.groups))
	for n := range c.groups {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		c.reconcileGroupLocked(c.groups[n], now)
	}
	// Pools after groups: a scale-out draws on the pool before it refills.
	c.reconcileWarmPoolsLocked(now)
	if c.dirty && c.cfg.StateFile != "" {
		if err := c.saveLocked(); err != nil {
			c.log.Warn("save state", "file", c.cfg.StateFile, "err", err)
		}
	}
}

func (c *Cloud) reconcileInstanceLocked(in *Instance, now time.Time) {
	if in.State == stateTerminated {
		if now.Sub(in.endTime) > terminatedRetention {
			delete(c.instances, in.ID)
		}
		return
	}
	if c.reconcileWarmInstanceLocked(in, now) {
		return
	}
	if in.hook != nil && !now.Before(in.hook.deadline) {
		c.log.Info("lifecycle action timed out", "instance", in.ID, "hook", in.hook.hook, "result", in.hook.result)
		c.resolveActionLocked(in, in.hook.result)
	}
	switch {
	case in.State == stateShuttingDown || in.Lifecycle == "Terminating" || in.Lifecycle == "Terminating:Proceed":
		in.State = stateShuttingDown
		c.stopLocked(in)
		if c.finishStopLocked(in) {
			in.State, in.endTime = stateTerminated, now
			if in.StateReason == "" {
				in.StateReason = "Client.UserInitiatedShutdown: User initiated shutdown"
			}
			if in.Group != "" {
				in.Lifecycle = "Terminated"
				c.endActivity(in.termActivity, "Successful", "")
			}
			c.releaseLocked(in)
			c.log.Info("instance terminated", "instance", in.ID, "group", in.Group)
		}
		return
	}
	exited := in.proc != nil && in.proc.exited()
	if exited && (in.State == statePending || in.State == stateRunning) {
		if in.Group == "" {
			// The workload ended: the instance halted itself.
			in.State, in.StateReason = stateStopped, "Client.InstanceInitiatedShutdown: Instance initiated shutdown"
			c.log.Info("instance stopped", "instance", in.ID)
			return
		}
		if in.Health != "Unhealthy" {
			in.Health = "Unhealthy"
			c.log.Info("instance unhealthy: its process exited", "instance", in.ID, "group", in.Group, "err", in.proc.err)
		}
	}
	if in.State == statePending && !now.Before(in.LaunchTime.Add(c.cfg.BootDelay)) && !exited {
		if !c.bootLocked(in) {
			return
		}
		in.State = stateRunning
		if in.Group != "" && in.Lifecycle == "Pending" {
			c.enterServiceLocked(in, now)
		}
	}
}

// enterServiceLocked moves a booted instance into service, through
// Pending:Wait when the group has a launching hook.
func (c *Cloud) enterServiceLocked(in *Instance, now time.Time) {
	if g := c.groups[in.Group]; g != nil {
		for _, h := range sortedHooks(g) {
			if h.Transition == transitionLaunching {
				in.Lifecycle = "Pending:Wait"
				in.hook = &pendingAction{hook: h.Name, token: newUUID(), timeout: time.Duration(h.HeartbeatTimeout) * time.Second, result: h.DefaultResult}
				in.hook.deadline = now.Add(in.hook.timeout)
				return
			}
		}
	}
	in.Lifecycle, in.inServiceAt = "InService", now
	c.endActivity(c.launchActivity(in), "Successful", "")
}

func (c *Cloud) reconcileGroupLocked(g *Group, now time.Time) {
	insts := c.groupInstancesLocked(g.Name)
	if g.Deleting {
		if len(insts) == 0 {
			delete(c.groups, g.Name)
			c.dirty = true
		}
		return
	}
	ts := now.UTC().Format(time.RFC3339)
	if !g.suspended("ReplaceUnhealthy") && !g.suspended("HealthCheck") {
		for _, in := range insts {
			if in.Health == "Unhealthy" && (in.Lifecycle == "InService" || in.Lifecycle == "Pending") {
				c.beginTerminateLocked(in, g, fmt.Sprintf("At %s an instance was taken out of service in response to an EC2 instance status check failure.", ts))
			}
		}
	}
	var active []*Instance
	for _, in := range insts {
		if countsActive(in) {
			active = append(active, in)
		}
	}
	switch {
	case len(active) < g.Desired && !g.suspended("Launch") && !now.Before(g.nextLaunch):
		from := len(active)
		for n := len(active); n < g.Desired; n++ {
			if !c.launchIntoGroupLocked(g, active, from, now) {
				g.nextLaunch = now.Add(c.cfg.LaunchRetry)
				break
			}
			active = c.activeLocked(g.Name)
		}
		g.scaleCause = ""
	case len(active) > g.Desired && !g.suspended("Terminate"):
		for _, in := range chooseVictims(active, len(active)-g.Desired) {
			if c.returnToPoolLocked(g, in, now) {
				continue
			}
			c.beginTerminateLocked(in, g, g.scaleCause+fmt.Sprintf("At %s an instance was taken out of service in response to a difference between desired and actual capacity, shrinking the capacity from %d to %d.", ts, len(active), g.Desired))
		}
		g.scaleCause = ""
	}
}

func (c *Cloud) activeLocked(group string) []*Instance {
	var out []*Instance
	for _, in := range c.groupInstancesLocked(group) {
		if countsActive(in) {
			out = append(out, in)
		}
	}
	return out
}

// pickSubnet spreads instances evenly over the group's zones, as Auto
// Scaling does: the subnet whose zone has the fewest active instances wins,
// ties going to the first listed.
func pickSubnet(subnets []string, active []*Instance) string {
	count := map[string]int{}
	for _, in := range active {
		count[in.SubnetID]++
	}
	best := ""
	for _, s := range subnets {
		if best == "" || count[s] < count[best] {
			best = s
		}
	}
	return best
}

// chooseVictims applies the Default termination policy: the zone with the
// most unprotected instances loses one first; within a zone the oldest
// instance goes (standing in for "oldest launch template, then closest to
// the next billing hour"). Protected instances are never chosen.
func chooseVictims(active []*Instance, n int) []*Instance {
	pool := map[string][]*Instance{}
	for _, in := range active {
		if !in.Protected {
			pool[in.AZ] = append(pool[in.AZ], in)
		}
	}
	var out []*Instance
	for ; n > 0; n-- {
		bestAZ := ""
		for az, list := range pool {
			if len(list) == 0 {
				continue
			}
			if bestAZ == "" || len(list) > len(pool[bestAZ]) || (len(list) == len(pool[bestAZ]) && az < bestAZ) {
				bestAZ = az
			}
		}
		if bestAZ == "" {
			break
		}
		list := pool[bestAZ]
		sort.Slice(list, func(i, j int) bool { return list[i].LaunchTime.Before(list[j].LaunchTime) })
		out = append(out, list[0])
		pool[bestAZ] = list[1:]
	}
	return out
}

// launchIntoGroupLocked launches one instance into g, recording the
// activity; it reports whether the launch succeeded.
func (c *Cloud) launchIntoGroupLocked(g *Group, active []*Instance, from int, now time.Time) bool {
	cause := g.scaleCause + fmt.Sprintf("At %s an instance was started in response to a difference between desired and actual capacity, increasing the capacity from %d to %d.", now.UTC().Format(time.RFC3339), from, g.Desired)
	_, ok := c.launchOneLocked(g, active, cause, now)
	return ok
}

// launchOneLocked brings one instance into g: from its warm pool when one
// is ready there, otherwise a new launch. Injected launch failures apply to
// both (starting a stopped instance can meet the same capacity errors).
func (c *Cloud) launchOneLocked(g *Group, active []*Instance, cause string, now time.Time) (*Instance, bool) {
	fail := func(msg string) (*Instance, bool) {
		a := c.newActivity(g.Name, "Launching a new EC2 instance.  Status Reason: "+msg+" Launching EC2 instance failed.", cause)
		// AWS's StatusMessage ends as the description does.
		c.endActivity(a, "Failed", msg+" Launching EC2 instance failed.")
		c.log.Warn("launch failed", "group", g.Name, "reason", msg)
		return nil, false
	}
	if msg, ok := c.faults.launchFailure(g.Name); ok {
		return fail(msg)
	}
	if in := c.fromWarmPoolLocked(g, cause, now); in != nil {
		return in, true
	}
	spec, msg := c.groupSpecLocked(g, active)
	if msg != "" {
		return fail(msg)
	}
	in, err := c.launchLocked(spec)
	if err != nil {
		msg := err.Error()
		if ae, ok := err.(*APIError); ok {
			msg = ae.Code + ": " + ae.Message
		}
		return fail(msg)
	}
	in.Protected = g.NewInstancesProtected
	a := c.newActivity(g.Name, "Launching a new EC2 instance: "+in.ID, cause)
	a.Details = fmt.Sprintf(`{"Subnet ID":%q,"Availability Zone":%q}`, in.SubnetID, in.AZ)
	a.Progress = 50
	return in, true
}

// groupSpecLocked is what a launch into g boots, or why it cannot.
func (c *Cloud) groupSpecLocked(g *Group, active []*Instance) (launchSpec, string) {
	_, v, err := c.resolveLT(LTRef{ID: g.LT.ID, Version: g.LT.Version})
	if err != nil {
		return launchSpec{}, err.(*APIError).Message
	}
	if v.ImageID == "" {
		return launchSpec{}, "The launch template does not specify an image id."
	}
	tags := append([]Tag(nil), v.InstanceTags...)
	for _, t := range g.Tags {
		if t.Propagate {
			tags = setTag(tags, t.Key, t.Value)
		}
	}
	tags = setTag(tags, "aws:autoscaling:groupName", g.Name)
	ref := g.LT
	return launchSpec{
		ImageID: v.ImageID, InstanceType: v.InstanceType, SubnetID: pickSubnet(g.Subnets, active),
		UserData: v.UserData, Tags: tags, Group: g.Name, LT: &ref,
	}, ""
}

func setTag(tags []Tag, k, v string) []Tag {
	for i := range tags {
		if tags[i].Key == k {
			tags[i].Value = v
			return tags
		}
	}
	return append(tags, Tag{Key: k, Value: v})
}

// EvaluateAlarms evaluates every alarm at the cloud's current time.
func (c *Cloud) EvaluateAlarms() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	defer c.passDoneLocked()
	now := c.clock.Now()
	changed := 0
	for _, a := range c.alarms.Sorted() {
		if a.Evaluate(c.metrics, now) {
			changed++
			c.dirty = true
			c.log.Info("alarm state changed", "alarm", a.Name, "state", a.State, "reason", a.StateReason)
		}
	}
	if c.invokePoliciesLocked(now) {
		c.dirty = true
		c.poke()
	}
	c.metrics.Prune(now, 15*24*time.Hour)
	return changed
}
