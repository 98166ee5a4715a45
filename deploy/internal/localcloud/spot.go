package localcloud

import (
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Spot interruptions are injected the way AWS Fault Injection Service's
// aws:ec2:send-spot-instance-interruptions action does it: the instance's
// metadata shows the notice, EventBridge gets the event, and the instance
// is terminated at the notice's time. Before it interrupts an instance EC2
// always gives both a rebalance recommendation and the two-minute notice
// (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-capacity-rebalancing.html),
// the recommendation possibly arriving along with the notice
// (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/rebalance-recommendations.html),
// so every interruption sends a recommendation too: --rebalance-first
// ahead of the notice, or at the same moment.

// spotReason is the StateReason of an instance EC2 reclaimed.
const spotReason = "Server.SpotInstanceTermination: Spot instance termination"

// Bounds of the injection's durations (cloud clock time). AWS's notice is
// two minutes (the default); shorter ones are allowed to keep demos short.
const (
	minNotice = time.Second
	maxNotice = 6 * time.Hour
)

// spotNotice is what was injected for one instance, and how far it got.
type spotNotice struct {
	rebalanceAt time.Time // zero: no recommendation
	noticeAt    time.Time // zero: a recommendation only
	terminateAt time.Time
	action      string

	rebalanceSent, noticeSent bool
	// replacement is the instance Capacity Rebalancing launched for this
	// one; replaced is set once it is in service.
	replacement string
	replaced    bool
}

// Interruption is what an injection scheduled (the admin endpoint's reply).
type Interruption struct {
	InstanceID      string `json:"instanceId"`
	Action          string `json:"action,omitempty"`
	RebalanceTime   string `json:"rebalanceTime,omitempty"`
	NoticeTime      string `json:"noticeTime,omitempty"`
	TerminationTime string `json:"terminationTime,omitempty"`
}

// Interrupt schedules a Spot interruption of instance id: a rebalance
// recommendation now, the interruption notice rebalanceFirst later, and
// termination in after the notice. With rebalanceOnly it sends only the
// recommendation, now.
func (c *Cloud) Interrupt(id string, in, rebalanceFirst time.Duration, rebalanceOnly bool) (Interruption, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	inst := c.instances[id]
	if inst == nil {
		return Interruption{}, apiErr(http.StatusNotFound, "InvalidInstanceID.NotFound", "The instance ID '%s' does not exist", id)
	}
	if inst.State != statePending && inst.State != stateRunning {
		return Interruption{}, apiErr(http.StatusConflict, "IncorrectInstanceState", "instance %s is %s: only a pending or running instance can be interrupted", id, inst.State)
	}
	if !rebalanceOnly && (in < minNotice || in > maxNotice) {
		return Interruption{}, apiErr(http.StatusBadRequest, "InvalidParameterValue", "in (%s) must be between %s and %s", in, minNotice, maxNotice)
	}
	if rebalanceFirst < 0 || rebalanceFirst > maxNotice {
		return Interruption{}, apiErr(http.StatusBadRequest, "InvalidParameterValue", "rebalance-first (%s) must be between 0s and %s", rebalanceFirst, maxNotice)
	}
	now := c.clock.Now()
	n := inst.spot
	if n == nil {
		n = &spotNotice{}
	}
	switch {
	case rebalanceOnly && !n.rebalanceAt.IsZero():
		return Interruption{}, apiErr(http.StatusConflict, "AlreadyRecommended", "instance %s already has a rebalance recommendation (%s)", id, n.rebalanceAt.UTC().Format(time.RFC3339))
	case !rebalanceOnly && !n.noticeAt.IsZero():
		return Interruption{}, apiErr(http.StatusConflict, "AlreadyInterrupted", "instance %s already has an interruption notice for %s", id, n.terminateAt.UTC().Format(time.RFC3339))
	}
	if n.rebalanceAt.IsZero() {
		n.rebalanceAt = now
	}
	if !rebalanceOnly {
		n.action = "terminate"
		n.noticeAt = now.Add(rebalanceFirst)
		n.terminateAt = n.noticeAt.Add(in)
	}
	inst.spot = n
	c.reconcileNoticesLocked(now)
	c.dirty = true
	c.poke()
	return n.view(id), nil
}

func (n *spotNotice) view(id string) Interruption {
	out := Interruption{InstanceID: id, Action: n.action, RebalanceTime: rfc3339(n.rebalanceAt)}
	if !n.noticeAt.IsZero() {
		out.NoticeTime, out.TerminationTime = rfc3339(n.noticeAt), rfc3339(n.terminateAt)
	}
	return out
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// reconcileNoticesLocked sends what has come due: events, the termination,
// and Capacity Rebalancing's replacement.
func (c *Cloud) reconcileNoticesLocked(now time.Time) {
	var ids []string
	for id, in := range c.instances {
		if in.spot != nil && in.State != stateTerminated {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		in := c.instances[id]
		n := in.spot
		if !n.rebalanceSent && !now.Before(n.rebalanceAt) {
			n.rebalanceSent = true
			c.emitLocked(detailRebalance, id, n.rebalanceAt, map[string]string{"instance-id": id})
		}
		if !n.noticeAt.IsZero() && !n.noticeSent && !now.Before(n.noticeAt) {
			n.noticeSent = true
			c.emitLocked(detailSpotInterruption, id, n.noticeAt, map[string]string{"instance-id": id, "instance-action": n.action})
		}
		if n.noticeSent && !now.Before(n.terminateAt) && in.State != stateShuttingDown {
			c.log.Info("spot instance interrupted", "instance", id, "group", in.Group)
			// AWS's cause for an instance EC2 took away from under its group.
			c.shutDownLocked(in, spotReason, fmt.Sprintf("At %s an instance was taken out of service in response to an EC2 health check indicating it has been terminated or stopped.", rfc3339(now)))
			continue
		}
		if n.rebalanceSent {
			c.capacityRebalanceLocked(in, now)
		}
	}
}

// capacityRebalanceLocked replaces an instance with a rebalance
// recommendation when its group has Capacity Rebalancing, as AWS documents
// (https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-capacity-rebalancing.html):
// it launches a new instance, waits until that one passes its health check
// (here: is InService), then terminates the old one. Because it launches
// before it terminates, it may exceed the group's maximum for a while, by
// up to 10 percent of the desired capacity (at least one instance here).
func (c *Cloud) capacityRebalanceLocked(in *Instance, now time.Time) {
	n := in.spot
	g := c.groups[in.Group]
	if g == nil || g.Deleting || !g.CapacityRebalance || n.replaced || strings.HasPrefix(in.Lifecycle, "Terminat") {
		return
	}
	if n.replacement != "" {
		r := c.instances[n.replacement]
		switch {
		case r == nil || r.State == stateTerminated || strings.HasPrefix(r.Lifecycle, "Terminat"):
			n.replacement = "" // lost before it served: launch another
		case r.Lifecycle == "InService":
			n.replaced = true
			c.beginTerminateLocked(in, g, fmt.Sprintf("At %s instance %s was taken out of service in response to an EC2 instance rebalance recommendation: its replacement %s is in service.", rfc3339(now), in.ID, r.ID))
			c.dirty = true
			return
		default:
			return
		}
	}
	if in.Lifecycle != "InService" || g.suspended("Launch") || now.Before(g.nextLaunch) {
		return
	}
	live := 0
	for _, o := range c.groupInstancesLocked(g.Name) {
		if !strings.HasPrefix(o.Lifecycle, "Terminat") {
			live++
		}
	}
	if live >= g.Max+max(1, g.Desired/10) {
		return
	}
	cause := fmt.Sprintf("At %s an instance was launched in response to an EC2 instance rebalance recommendation for instance %s.", rfc3339(now), in.ID)
	r, ok := c.launchOneLocked(g, c.activeLocked(g.Name), cause, now)
	if !ok {
		g.nextLaunch = now.Add(c.cfg.LaunchRetry)
		return
	}
	n.replacement = r.ID
	c.dirty = true
}

// countsActive is whether an instance counts toward its group's capacity:
// not terminating, and not already being replaced by Capacity Rebalancing
// (its replacement counts instead).
func countsActive(in *Instance) bool {
	if strings.HasPrefix(in.Lifecycle, "Terminat") {
		return false
	}
	return in.spot == nil || in.spot.replacement == "" || in.spot.replaced
}

// imdsExtraLocked is the metadata that follows the instance's lifecycle.
// Formats: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/spot-instance-termination-notices.html
// (instance-action, termination-time; 404 until a notice),
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/rebalance-recommendations.html
// (noticeTime; 404 until one), and
// https://docs.aws.amazon.com/autoscaling/ec2/userguide/retrieving-target-lifecycle-state-through-imds.html.
func (c *Cloud) imdsExtraLocked(in *Instance) map[string]string {
	out := map[string]string{}
	now := c.clock.Now()
	if n := in.spot; n != nil {
		if !n.noticeAt.IsZero() && !now.Before(n.noticeAt) {
			out["/latest/meta-data/spot"] = "instance-action\ntermination-time"
			out["/latest/meta-data/spot/instance-action"] = fmt.Sprintf(`{"action": %q, "time": %q}`, n.action, rfc3339(n.terminateAt))
			out["/latest/meta-data/spot/termination-time"] = rfc3339(n.terminateAt)
		}
		if !now.Before(n.rebalanceAt) {
			out["/latest/meta-data/events"] = "recommendations/"
			out["/latest/meta-data/events/recommendations"] = "rebalance"
			out["/latest/meta-data/events/recommendations/rebalance"] = fmt.Sprintf(`{"noticeTime": %q}`, rfc3339(n.rebalanceAt))
		}
	}
	if s := c.targetLifecycleLocked(in); s != "" {
		out["/latest/meta-data/autoscaling"] = "target-lifecycle-state"
		out["/latest/meta-data/autoscaling/target-lifecycle-state"] = s
	}
	return out
}

// targetLifecycleLocked is the steady state an Auto Scaling instance is
// heading for: InService, Terminated, or a Warmed:* state; empty outside
// a group.
func (c *Cloud) targetLifecycleLocked(in *Instance) string {
	l := in.Lifecycle
	switch {
	case in.Group == "":
		return ""
	case strings.HasPrefix(l, "Warmed:Terminat"):
		return "Warmed:Terminated"
	case strings.HasPrefix(l, "Terminat"):
		return "Terminated"
	case strings.HasPrefix(l, "Warmed:Pending"):
		return "Warmed:" + c.poolStateLocked(in.Group)
	case strings.HasPrefix(l, "Warmed:"):
		return l
	}
	return "InService"
}

// hookInterrupt serves POST /_localcloud/interrupt?instance=ID[&in=120s]
// [&rebalance-first=30s][&rebalance-only=true].
func (s *Server) hookInterrupt(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		hookError(w, http.StatusMethodNotAllowed, "use POST")
		return
	}
	q := r.URL.Query()
	id := q.Get("instance")
	if id == "" {
		hookError(w, http.StatusBadRequest, "instance is required (an instance id)")
		return
	}
	dur := func(name string, def time.Duration) (time.Duration, bool) {
		v := q.Get(name)
		if v == "" {
			return def, true
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			hookError(w, http.StatusBadRequest, fmt.Sprintf("%s (%q) must be a duration such as 120s", name, v))
			return 0, false
		}
		return d, true
	}
	in, ok := dur("in", 2*time.Minute)
	if !ok {
		return
	}
	first, ok := dur("rebalance-first", 0)
	if !ok {
		return
	}
	only := false
	if v := q.Get("rebalance-only"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			hookError(w, http.StatusBadRequest, fmt.Sprintf("rebalance-only (%q) must be true or false", v))
			return
		}
		only = b
	}
	res, err := s.cloud.Interrupt(id, in, first, only)
	if err != nil {
		ae := err.(*APIError)
		hookError(w, ae.Status, ae.Message)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

// launchCodeRE is the shape of an EC2 error code.
var launchCodeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9.]{0,63}$`)

// hookLaunchFault serves /_localcloud/faults/launch: POST injects (group,
// code, message, count), DELETE clears.
func (s *Server) hookLaunchFault(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	group := q.Get("group")
	if group == "" {
		group = "*"
	}
	switch r.Method {
	case http.MethodPost:
		code, msg := q.Get("code"), q.Get("message")
		if len(msg) > 1024 {
			hookError(w, http.StatusBadRequest, "message must be at most 1024 bytes")
			return
		}
		if code != "" && !launchCodeRE.MatchString(code) {
			hookError(w, http.StatusBadRequest, fmt.Sprintf("code (%q) must be an EC2 error code such as InsufficientInstanceCapacity", code))
			return
		}
		if code == "" && msg == "" {
			code = "InsufficientInstanceCapacity"
		}
		if code == "InsufficientInstanceCapacity" && msg == "" {
			msg = "We currently do not have sufficient capacity in the Availability Zone you requested. Our system will be working on provisioning additional capacity."
		}
		if code != "" {
			// As AWS words a failed launch's status.
			msg = "Could not launch On-Demand Instances. " + code + " - " + msg
		}
		count := 0
		if v := q.Get("count"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 10000 {
				hookError(w, http.StatusBadRequest, fmt.Sprintf("count (%q) must be an integer from 1 to 10000 (leave it out to fail every launch until cleared)", v))
				return
			}
			count = n
		}
		s.cloud.faults.setLaunchFailure(group, msg, count)
		s.cloud.poke()
		writeJSON(w, http.StatusOK, map[string]any{"group": group, "statusMessage": msg + " Launching EC2 instance failed.", "count": count})
	case http.MethodDelete:
		s.cloud.faults.setLaunchFailure(group, "", 0)
		s.cloud.mu.Lock()
		if g := s.cloud.groups[group]; g != nil {
			g.nextLaunch = time.Time{}
		}
		s.cloud.mu.Unlock()
		s.cloud.poke()
		writeJSON(w, http.StatusOK, map[string]string{"group": group})
	default:
		hookError(w, http.StatusMethodNotAllowed, "use POST to inject, DELETE to clear")
	}
}
