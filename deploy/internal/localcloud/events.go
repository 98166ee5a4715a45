package localcloud

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// EventBridge detail types the local cloud emits, as EC2 names them.
const (
	detailSpotInterruption = "EC2 Spot Instance Interruption Warning"
	detailRebalance        = "EC2 Instance Rebalance Recommendation"
)

// maxEvents bounds the event log; older events are dropped and counted.
const maxEvents = 10000

// Event is one EventBridge event, in the envelope EventBridge delivers:
// https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/spot-instance-termination-notices.html
// and https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/rebalance-recommendations.html
// show the two the local cloud sends.
type Event struct {
	Version    string            `json:"version"`
	ID         string            `json:"id"`
	DetailType string            `json:"detail-type"`
	Source     string            `json:"source"`
	Account    string            `json:"account"`
	Time       string            `json:"time"`
	Region     string            `json:"region"`
	Resources  []string          `json:"resources"`
	Detail     map[string]string `json:"detail"`
}

// eventLog is the local stand-in for an EventBridge bus: it keeps the
// newest maxEvents events for GET /_localcloud/events (guarded by Cloud.mu).
type eventLog struct {
	list    []Event
	dropped int
}

// emitLocked appends an EC2 event about instance id at t.
func (c *Cloud) emitLocked(detailType, id string, t time.Time, detail map[string]string) {
	e := Event{
		Version: "0", ID: newUUID(), DetailType: detailType, Source: "aws.ec2",
		Account: c.cfg.AccountID, Time: t.UTC().Format(time.RFC3339), Region: c.cfg.Region,
		Resources: []string{"arn:aws:ec2:" + c.cfg.Region + ":" + c.cfg.AccountID + ":instance/" + id},
		Detail:    detail,
	}
	c.events.list = append(c.events.list, e)
	if n := len(c.events.list) - maxEvents; n > 0 {
		c.events.list = append([]Event(nil), c.events.list[n:]...)
		c.events.dropped += n
	}
	c.log.Info("event", "detail-type", detailType, "instance", id, "time", e.Time)
}

// Events returns the events after the one with id after (all when empty),
// keeping those of detailType when it is set, and how many were dropped.
func (c *Cloud) Events(after, detailType string) ([]Event, int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	start := 0
	if after != "" {
		start = -1
		for i, e := range c.events.list {
			if e.ID == after {
				start = i + 1
			}
		}
		if start < 0 {
			return nil, c.events.dropped, false
		}
	}
	var out []Event
	for _, e := range c.events.list[start:] {
		if detailType == "" || e.DetailType == detailType {
			out = append(out, e)
		}
	}
	return out, c.events.dropped, true
}

// hookEvents serves GET /_localcloud/events: JSON lines, oldest first.
func (s *Server) hookEvents(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		hookError(w, http.StatusMethodNotAllowed, "use GET")
		return
	}
	q := r.URL.Query()
	evs, dropped, ok := s.cloud.Events(q.Get("after"), q.Get("detail-type"))
	if !ok {
		hookError(w, http.StatusNotFound, "after ("+q.Get("after")+") is not the id of an event in the log (it may have been dropped)")
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("X-Localcloud-Events-Dropped", strconv.Itoa(dropped))
	enc := json.NewEncoder(w)
	for _, e := range evs {
		_ = enc.Encode(e)
	}
}
