package localcloud

import (
	"net/http"
	"time"
)

// Activity is a scaling activity.
type Activity struct {
	ID            string    `json:"id"`
	Group         string    `json:"group"`
	Description   string    `json:"description"`
	Cause         string    `json:"cause"`
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	Status        string    `json:"status"`
	StatusMessage string    `json:"statusMessage,omitempty"`
	Progress      int       `json:"progress"`
	Details       string    `json:"details"`
}

func (c *Cloud) newActivity(group, desc, cause string) *Activity {
	a := &Activity{ID: newUUID(), Group: group, Description: desc, Cause: cause, Start: c.clock.Now(), Status: "InProgress", Details: `{"Subnet ID":"","Availability Zone":""}`}
	c.activities = append(c.activities, a)
	if len(c.activities) > maxActivities {
		c.activities = c.activities[len(c.activities)-maxActivities:]
	}
	return a
}

func (c *Cloud) endActivity(a *Activity, status, msg string) {
	if a == nil {
		return
	}
	a.Status, a.StatusMessage, a.End, a.Progress = status, msg, c.clock.Now(), 100
	if g := c.groups[a.Group]; g != nil {
		g.lastActivity = a.End
	}
}

func (c *Cloud) launchActivity(in *Instance) *Activity {
	for i := len(c.activities) - 1; i >= 0; i-- {
		a := c.activities[i]
		if a.Group == in.Group && (a.Description == "Launching a new EC2 instance: "+in.ID || a.Description == warmLaunchDesc+in.ID) {
			return a
		}
	}
	return nil
}

// Activities is DescribeScalingActivities: newest first, at most max, and
// after the activity whose id is the NextToken when one is given. It returns
// the token for the next page, empty on the last.
func (c *Cloud) Activities(group string, ids []string, max int, after string) ([]Activity, string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if group != "" && c.groups[group] == nil {
		// AWS returns an empty list for deleted groups unless asked for
		// them, and a ValidationError for a name it never knew.
		found := false
		for _, a := range c.activities {
			found = found || a.Group == group
		}
		if !found {
			return nil, "", validation("AutoScalingGroup name not found - AutoScalingGroup %s not found", group)
		}
	}
	if max == 0 {
		max = 100
	}
	if max < 1 || max > 100 {
		return nil, "", validation("MaxRecords (%d) must be between 1 and 100", max)
	}
	start := len(c.activities) - 1
	if after != "" {
		start = -2
		for i := len(c.activities) - 1; i >= 0; i-- {
			if c.activities[i].ID == after {
				start = i - 1
				break
			}
		}
		if start == -2 {
			return nil, "", apiErr(http.StatusBadRequest, "InvalidNextToken", "The token %q is invalid.", after)
		}
	}
	var out []Activity
	for i := start; i >= 0; i-- {
		a := c.activities[i]
		if group != "" && a.Group != group {
			continue
		}
		if len(ids) > 0 && !contains(ids, a.ID) {
			continue
		}
		if len(out) == max {
			return out, out[len(out)-1].ID, nil
		}
		out = append(out, *a)
	}
	return out, "", nil
}
