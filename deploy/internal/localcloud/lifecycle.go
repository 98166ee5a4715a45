package localcloud

import (
	"fmt"
	"net/http"
	"sort"
	"time"
)

func validateHook(h *Hook) error {
	if h.Name == "" || len(h.Name) > 255 {
		return validation("LifecycleHookName must be 1 to 255 characters")
	}
	switch h.Transition {
	case transitionTerminating, transitionLaunching:
	default:
		return validation("Invalid Lifecycle Transition %q: must be %s or %s", h.Transition, transitionLaunching, transitionTerminating)
	}
	if h.HeartbeatTimeout == 0 {
		h.HeartbeatTimeout = 3600
	}
	if h.HeartbeatTimeout < 30 || h.HeartbeatTimeout > 7200 {
		return validation("HeartbeatTimeout (%d) must be between 30 and 7200 seconds", h.HeartbeatTimeout)
	}
	if h.DefaultResult == "" {
		h.DefaultResult = "ABANDON"
	}
	if h.DefaultResult != "CONTINUE" && h.DefaultResult != "ABANDON" {
		return validation("DefaultResult %q must be CONTINUE or ABANDON", h.DefaultResult)
	}
	return nil
}

func sortedHooks(g *Group) []*Hook {
	out := make([]*Hook, 0, len(g.Hooks))
	for _, h := range g.Hooks {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// PutHook is PutLifecycleHook (create or update).
func (c *Cloud) PutHook(group string, h Hook) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.groupLocked(group)
	if err != nil {
		return err
	}
	if old := g.Hooks[h.Name]; old != nil {
		if h.Transition == "" {
			h.Transition = old.Transition
		}
		if h.HeartbeatTimeout == 0 {
			h.HeartbeatTimeout = old.HeartbeatTimeout
		}
		if h.DefaultResult == "" {
			h.DefaultResult = old.DefaultResult
		}
	}
	if err := validateHook(&h); err != nil {
		return err
	}
	if g.Hooks[h.Name] == nil && len(g.Hooks) >= 50 {
		return apiErr(http.StatusBadRequest, "LimitExceeded", "Max number of lifecycle hooks (50) for group %s reached", group)
	}
	g.Hooks[h.Name] = &h
	c.dirty = true
	return nil
}

// Hooks is DescribeLifecycleHooks.
func (c *Cloud) Hooks(group string, names []string) ([]Hook, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.groupLocked(group)
	if err != nil {
		return nil, err
	}
	var out []Hook
	for _, h := range sortedHooks(g) {
		if len(names) > 0 && !contains(names, h.Name) {
			continue
		}
		out = append(out, *h)
	}
	return out, nil
}

// DeleteHook is DeleteLifecycleHook.
func (c *Cloud) DeleteHook(group, name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, err := c.groupLocked(group)
	if err != nil {
		return err
	}
	if g.Hooks[name] == nil {
		return validation("No Lifecycle Hook found for group %s with name %s", group, name)
	}
	delete(g.Hooks, name)
	c.dirty = true
	return nil
}

func (c *Cloud) findActionLocked(group, hook, instanceID, token string) (*Instance, error) {
	if _, err := c.groupLocked(group); err != nil {
		return nil, err
	}
	for _, in := range c.instances {
		if in.Group != group || in.hook == nil || in.hook.hook != hook {
			continue
		}
		if (instanceID != "" && in.ID == instanceID) || (instanceID == "" && token != "" && in.hook.token == token) {
			return in, nil
		}
	}
	if instanceID != "" {
		return nil, validation("No active Lifecycle Action found with instance ID %s", instanceID)
	}
	if token == "" {
		return nil, validation("Either InstanceId or LifecycleActionToken is required")
	}
	return nil, validation("No active Lifecycle Action found with token %s", token)
}

// CompleteAction is CompleteLifecycleAction.
func (c *Cloud) CompleteAction(group, hook, instanceID, token, result string) error {
	if result != "CONTINUE" && result != "ABANDON" {
		return validation("LifecycleActionResult %q must be CONTINUE or ABANDON", result)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	in, err := c.findActionLocked(group, hook, instanceID, token)
	if err != nil {
		return err
	}
	c.resolveActionLocked(in, result)
	c.poke()
	return nil
}

// resolveActionLocked ends a lifecycle wait with CONTINUE or ABANDON.
func (c *Cloud) resolveActionLocked(in *Instance, result string) {
	in.hook = nil
	switch in.Lifecycle {
	case "Terminating:Wait":
		// Either result terminates; ABANDON only skips remaining hooks.
		in.Lifecycle = "Terminating:Proceed"
	case "Pending:Wait":
		if result == "CONTINUE" {
			in.Lifecycle, in.inServiceAt = "InService", c.clock.Now()
			c.endActivity(c.launchActivity(in), "Successful", "")
		} else {
			g := c.groups[in.Group]
			c.endActivity(c.launchActivity(in), "Failed", "Launching lifecycle action was abandoned")
			if g != nil {
				c.beginTerminateLocked(in, g, fmt.Sprintf("At %s the launching lifecycle action for instance %s was abandoned.", c.clock.Now().UTC().Format(time.RFC3339), in.ID))
				in.hook, in.Lifecycle = nil, "Terminating"
			}
		}
	}
}

// RecordHeartbeat is RecordLifecycleActionHeartbeat: it restarts the
// heartbeat timeout.
func (c *Cloud) RecordHeartbeat(group, hook, instanceID, token string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	in, err := c.findActionLocked(group, hook, instanceID, token)
	if err != nil {
		return err
	}
	in.hook.deadline = c.clock.Now().Add(in.hook.timeout)
	return nil
}
