package feed

import (
	"fmt"
	"sort"
	"time"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// Drained reports whether every live LB of fleet has reported instanceID at
// zero in-flight after it was sent the backend as draining. An LB whose
// stream ended within ReconnectGrace holds the drain too: it still routes by
// its last set while it reconnects. For ReconnectGrace after this node
// becomes leader nothing is drained until an LB of the fleet reports here,
// since the LBs that were on the old leader are unknown; a fleet with no LB
// at all therefore drains once that grace has passed. When it is not
// drained, the reason names what holds it.
func (s *Service) Drained(fleet, instanceID string) (bool, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.cfg.Now()
	if !s.observeLeaderLocked(now) {
		return false, "not the leader"
	}
	live := s.liveLocked(fleet)
	if since := now.Sub(s.leaderSince); since < s.cfg.ReconnectGrace && !s.reportedSinceLocked(fleet, s.leaderSince) {
		return false, fmt.Sprintf("leader since %v: waiting for LBs to reconnect", since.Round(time.Second))
	}
	var waiting []string
	for _, sess := range live {
		if ok, why := sess.drained(instanceID); !ok {
			waiting = append(waiting, sess.lbID+": "+why)
		}
	}
	for _, sess := range s.sessions {
		if sess.fleet != fleet || sess.streams > 0 || now.Sub(sess.lastReport) <= s.cfg.LeaseTTL {
			continue // live ones were judged above; a silent open stream has lost its lease
		}
		if gone := now.Sub(sess.endedAt); gone <= s.cfg.ReconnectGrace {
			waiting = append(waiting, fmt.Sprintf("waiting on LB %s to reconnect (gone %v)", sess.lbID, gone.Round(time.Second)))
		}
	}
	if len(waiting) == 0 {
		return true, ""
	}
	sort.Strings(waiting)
	return false, fmt.Sprintf("waiting on %d LB(s): %v", len(waiting), waiting)
}

// reportedSinceLocked reports whether an LB of fleet has reported at or after
// t. s.mu must be held.
func (s *Service) reportedSinceLocked(fleet string, t time.Time) bool {
	for _, sess := range s.sessions {
		if sess.fleet == fleet && sess.report != nil && !sess.reportedAt.Before(t) {
			return true
		}
	}
	return false
}

func (sess *session) drained(id string) (bool, string) {
	v, sent := sess.drainVersion[id]
	if !sent {
		return false, "not yet told it is draining"
	}
	r := sess.report
	if r == nil || r.Version < v {
		return false, "no report since it was told"
	}
	for _, b := range r.Backends {
		if b.InstanceId != id {
			continue
		}
		if b.State != shoalv1.BackendState_BACKEND_STATE_DRAINING {
			return false, "still holds it as " + b.State.String()
		}
		if b.InFlight > 0 {
			return false, fmt.Sprintf("%d in flight", b.InFlight)
		}
		return true, ""
	}
	// The LB applied a set with the backend draining and has since dropped it.
	return true, ""
}
