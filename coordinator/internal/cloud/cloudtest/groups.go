package cloudtest

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
)

// Groups is an in-memory model of Auto Scaling groups, just enough for the
// scaler: desired capacity launches or removes InService instances at once
// (balanced across the group's AZs), terminating with decrement shrinks the
// group, without it the group launches a replacement, and every change is
// recorded as a Successful activity. Errors look like the real ones: a
// *cloud.Error with the same sentinel kinds.
type Groups struct {
	mu         sync.Mutex
	groups     map[string]*cloud.Group
	activities map[string][]cloud.Activity
	next       int
}

// NewGroups returns a model holding copies of gs. A group without AZs gets
// us-east-1a and us-east-1b; instances are created to match Desired when
// none are given.
func NewGroups(gs ...cloud.Group) *Groups {
	m := &Groups{groups: map[string]*cloud.Group{}, activities: map[string][]cloud.Activity{}}
	for _, g := range gs {
		g := g
		g.Instances = append([]cloud.Instance(nil), g.Instances...)
		if len(g.AvailabilityZones) == 0 {
			g.AvailabilityZones = []string{"us-east-1a", "us-east-1b"}
		}
		m.groups[g.Name] = &g
		if len(g.Instances) == 0 {
			m.resize(&g, g.Desired, "created")
		}
	}
	return m
}

// Install points f's group-related fields at the model.
func (m *Groups) Install(f *Fake) {
	f.DescribeGroupsFunc = m.DescribeGroups
	f.SetDesiredCapacityFunc = m.SetDesiredCapacity
	f.TerminateInstanceFunc = m.TerminateInstance
	f.SetInstanceProtectionFunc = m.SetInstanceProtection
	f.DescribeScalingActivitiesFunc = m.DescribeScalingActivities
}

// Group returns a copy of the named group.
func (m *Groups) Group(name string) (cloud.Group, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	g, ok := m.groups[name]
	if !ok {
		return cloud.Group{}, false
	}
	return copyGroup(g), true
}

// Update changes a group in place (suspend a process, say) under the lock.
func (m *Groups) Update(name string, fn func(*cloud.Group)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if g, ok := m.groups[name]; ok {
		fn(g)
	}
}

func copyGroup(g *cloud.Group) cloud.Group {
	c := *g
	c.Instances = append([]cloud.Instance(nil), g.Instances...)
	c.SuspendedProcesses = append([]string(nil), g.SuspendedProcesses...)
	return c
}

func notFound(op, group string) error {
	return &cloud.Error{Op: op, Code: "ValidationError", Status: 400, Kind: cloud.ErrGroupNotFound,
		Err: fmt.Errorf("autoScalingGroup name not found - AutoScalingGroup %s not found", group)}
}

// DescribeGroups is cloud.Scaling's, over the model; unknown names are absent.
func (m *Groups) DescribeGroups(_ context.Context, names []string) ([]cloud.Group, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []cloud.Group
	for _, n := range names {
		if g, ok := m.groups[n]; ok {
			out = append(out, copyGroup(g))
		}
	}
	return out, nil
}

// SetDesiredCapacity is cloud.Scaling's, over the model.
func (m *Groups) SetDesiredCapacity(_ context.Context, group string, desired int32) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	g, ok := m.groups[group]
	if !ok {
		return notFound("autoscaling:SetDesiredCapacity", group)
	}
	if desired < g.Min || desired > g.Max {
		return &cloud.Error{Op: "autoscaling:SetDesiredCapacity", Code: "ValidationError", Status: 400, Kind: cloud.ErrValidation,
			Err: fmt.Errorf("new SetDesiredCapacity value %d is outside the bounds of min %d and max %d", desired, g.Min, g.Max)}
	}
	m.resize(g, desired, fmt.Sprintf("desired capacity changed from %d to %d", g.Desired, desired))
	return nil
}

// resize launches or removes instances to reach desired; removal takes the
// newest unprotected instances first, as the default termination policy
// roughly does. The caller holds the lock.
func (m *Groups) resize(g *cloud.Group, desired int32, cause string) {
	g.Desired = desired
	for int32(len(g.Instances)) < desired {
		m.next++
		az := g.AvailabilityZones[len(g.Instances)%len(g.AvailabilityZones)]
		id := fmt.Sprintf("i-fake%08d", m.next)
		g.Instances = append(g.Instances, cloud.Instance{ID: id, AZ: az, LifecycleState: cloud.LifecycleInService, Health: cloud.HealthHealthy, Protected: g.NewInstancesProtect})
		m.activity(g.Name, "Launching a new EC2 instance: "+id, cause)
	}
	for int32(len(g.Instances)) > desired {
		idx := -1
		for i := len(g.Instances) - 1; i >= 0; i-- {
			if !g.Instances[i].Protected {
				idx = i
				break
			}
		}
		if idx < 0 {
			return // every instance is protected: the group keeps them, as AWS does
		}
		id := g.Instances[idx].ID
		g.Instances = append(g.Instances[:idx], g.Instances[idx+1:]...)
		m.activity(g.Name, "Terminating EC2 instance: "+id, cause)
	}
}

func (m *Groups) activity(group, desc, cause string) cloud.Activity {
	m.next++
	a := cloud.Activity{ID: fmt.Sprintf("act-%d", m.next), Group: group, Description: desc, Cause: cause, Status: "Successful", Progress: 100}
	m.activities[group] = append(m.activities[group], a)
	return a
}

// TerminateInstance is cloud.Scaling's, over the model.
func (m *Groups) TerminateInstance(_ context.Context, id string, decrement bool) (cloud.Activity, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	names := make([]string, 0, len(m.groups))
	for n := range m.groups {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		g := m.groups[n]
		for i, inst := range g.Instances {
			if inst.ID != id {
				continue
			}
			if decrement && g.Desired-1 < g.Min {
				return cloud.Activity{}, &cloud.Error{Op: "autoscaling:TerminateInstanceInAutoScalingGroup", Code: "ValidationError", Status: 400, Kind: cloud.ErrValidation,
					Err: fmt.Errorf("currently, desiredSize equals minSize (%d). Terminating instance without replacement will violate group's min size constraint", g.Min)}
			}
			g.Instances = append(g.Instances[:i], g.Instances[i+1:]...)
			a := m.activity(g.Name, "Terminating EC2 instance: "+id, "instance terminated by request")
			if decrement {
				g.Desired--
			} else {
				m.resize(g, g.Desired, "replacing terminated instance "+id)
			}
			return a, nil
		}
	}
	return cloud.Activity{}, &cloud.Error{Op: "autoscaling:TerminateInstanceInAutoScalingGroup", Code: "ValidationError", Status: 400, Kind: cloud.ErrInstanceNotFound,
		Err: fmt.Errorf("instance Id not found - No managed instance found for instance ID: %s", id)}
}

// SetInstanceProtection is cloud.Scaling's, over the model.
func (m *Groups) SetInstanceProtection(_ context.Context, group string, ids []string, protected bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	g, ok := m.groups[group]
	if !ok {
		return notFound("autoscaling:SetInstanceProtection", group)
	}
	for _, id := range ids {
		found := false
		for i := range g.Instances {
			if g.Instances[i].ID == id {
				g.Instances[i].Protected = protected
				found = true
			}
		}
		if !found {
			return &cloud.Error{Op: "autoscaling:SetInstanceProtection", Code: "ValidationError", Status: 400, Kind: cloud.ErrInstanceNotFound,
				Err: fmt.Errorf("the instance %s is not part of Auto Scaling group %s", id, group)}
		}
	}
	return nil
}

// DescribeScalingActivities is cloud.Scaling's, over the model (newest first).
func (m *Groups) DescribeScalingActivities(_ context.Context, group string, max int32) ([]cloud.Activity, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.groups[group]; !ok {
		return nil, notFound("autoscaling:DescribeScalingActivities", group)
	}
	acts := m.activities[group]
	var out []cloud.Activity
	for i := len(acts) - 1; i >= 0 && int32(len(out)) < max; i-- {
		out = append(out, acts[i])
	}
	return out, nil
}

// AddActivity records an activity (a failed launch, say) for group.
func (m *Groups) AddActivity(a cloud.Activity) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.activities[a.Group] = append(m.activities[a.Group], a)
}
