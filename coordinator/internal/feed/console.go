package feed

import (
	"sort"
	"time"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// LBView is one live LB session of a fleet as last reported, for the
// operator console.
type LBView struct {
	ID         string
	LastReport time.Time
	// RatePerSec is the LB's request rate over its last report interval.
	RatePerSec float64
	Backends   []BackendView
}

// BackendView is one backend in an LB's last report.
type BackendView struct {
	Load *shoalv1.BackendLoad
	// RatePerSec is this backend's share of the LB's rate.
	RatePerSec float64
}

// Reports lists fleet's live LB sessions with their last reports, by LB id.
func (s *Service) Reports(fleet string) []LBView {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []LBView
	for _, sess := range s.liveLocked(fleet) {
		v := LBView{ID: sess.lbID, LastReport: sess.reportedAt, RatePerSec: sess.rps}
		if sess.report != nil {
			var total uint64
			for _, b := range sess.report.Backends {
				total += b.Requests
			}
			for _, b := range sess.report.Backends {
				bv := BackendView{Load: b}
				// rps is total requests over the interval, so each
				// backend's requests scale by the same factor.
				if total > 0 && sess.rateKnown {
					bv.RatePerSec = float64(b.Requests) * sess.rps / float64(total)
				}
				v.Backends = append(v.Backends, bv)
			}
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
