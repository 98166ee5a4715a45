package demo

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// Summary is what summary.json holds: the run's numbers.
type Summary struct {
	Fleet       string  `json:"fleet"`
	Golden      string  `json:"golden_instance"`
	Made        []Made  `json:"made"`
	Min         int     `json:"min"`
	Max         int     `json:"max"`
	Target      float64 `json:"target"`
	Capacity    int     `json:"capacity_rps_per_instance"`
	BaselineRPS int     `json:"baseline_rps"`
	SpikeRPS    int     `json:"spike_rps"`
	// SpikeStart and SpikeEnd are timeline seconds.
	SpikeStart int `json:"spike_start_t"`
	SpikeEnd   int `json:"spike_end_t"`
	// LoadEnd is the timeline second the baseline load stops.
	LoadEnd int `json:"load_end_t"`
	// LoadStartUnixMS is the wall-clock time of t=0.
	LoadStartUnixMS int64 `json:"load_start_unix_ms"`

	// Scenario is "spike" or "spot" (Config.Scenario).
	Scenario string `json:"scenario"`

	TotalRequests  int `json:"total_requests"`
	FailedRequests int `json:"failed_requests"`
	// UnsentRequests (spot scenario) counts requests the generator's
	// schedule called for but could not send, every connection busy.
	UnsentRequests int `json:"unsent_requests,omitempty"`
	// Interruptions are the spot scenario's Spot interruptions (spot.go).
	Interruptions []Interruption `json:"interruptions,omitempty"`
	// PreNoticeInService is the spot scenario's in-service count just
	// before the first notice; MinInServiceAfterNotice the least the
	// coordinators showed from then to the end (both -1 without a notice).
	PreNoticeInService      int `json:"pre_notice_in_service,omitempty"`
	MinInServiceAfterNotice int `json:"min_in_service_after_notice,omitempty"`
	// SpotWatchMissed counts the spot scenario's 200 ms reads of either
	// record that failed (each moment is then known to a poll later).
	SpotWatchMissed int `json:"spot_watch_missed,omitempty"`
	// FailedDuringScaleIn counts failures from the first scale-in decision
	// until the fleet was back at min with nothing draining (plus 2 s).
	FailedDuringScaleIn int `json:"failed_during_scale_in"`

	// SpikeCrossedTargetT is when the offered load first exceeded what the
	// in-service instances serve at the target (timeline seconds).
	SpikeCrossedTargetT float64 `json:"spike_crossed_target_t"`
	// ScaleOutDecidedT is when the first decision raising capacity was
	// committed (timeline seconds, from the decision's own timestamp).
	ScaleOutDecidedT float64 `json:"scale_out_decided_t"`
	// ScaleOutReactionS = ScaleOutDecidedT − SpikeCrossedTargetT; -1 if the
	// fleet never scaled out.
	ScaleOutReactionS float64 `json:"scale_out_reaction_s"`
	PeakDesired       int     `json:"peak_desired"`
	PeakP99ms         float64 `json:"peak_p99_ms"`
	// ScaleInStartT is the first decision lowering capacity after the spike.
	ScaleInStartT float64 `json:"scale_in_start_t"`
	// BackAtMinT is the first second after the spike with desired and
	// in-service at min and nothing draining; -1 if never.
	BackAtMinT int `json:"back_at_min_t"`
	// ScaleInDurationS is from the load dropping (SpikeEnd) to BackAtMinT.
	ScaleInDurationS float64 `json:"scale_in_duration_s"`

	Decisions    []DecisionMark `json:"decisions"`
	Alarms       []alarmInfo    `json:"alarms"`
	AlarmChanges []alarmChange  `json:"alarm_changes"`
	// HighAlarm is the policy's high alarm; HighAlarmFired and
	// HighAlarmCleared say whether it reached ALARM during the spike and
	// left it after.
	HighAlarm        string `json:"high_alarm"`
	HighAlarmFired   bool   `json:"high_alarm_fired"`
	HighAlarmCleared bool   `json:"high_alarm_cleared"`
	// AWSAgent is what the stand-in CloudWatch agent sent and dropped in
	// a compare run.
	AWSAgent *AgentCounts `json:"aws_agent,omitempty"`
	// Fleets has one entry per fleet: Shoal's, and in a compare run the
	// AWS-scaled one (fleets.go).
	Fleets []FleetResult `json:"fleets"`
	// Complete is false when the run was cut short.
	Complete bool  `json:"complete"`
	Rows     []Row `json:"-"`
}

func (r *run) summarise(t loadTotals, complete bool) *Summary {
	cfg := r.cfg
	s := &Summary{
		Fleet: Fleet, Scenario: cfg.Scenario, Golden: r.golden, Made: r.made, Min: cfg.Min, Max: cfg.Max, Target: cfg.Target, Capacity: cfg.Capacity,
		BaselineRPS: cfg.BaselineRPS, SpikeRPS: cfg.SpikeRPS, SpikeStart: r.spikeAt, SpikeEnd: r.spikeEnd, LoadEnd: r.loadEnd,
		LoadStartUnixMS: r.t0.UnixMilli(), TotalRequests: t.requests, FailedRequests: t.errors,
		Decisions: r.decisions, Alarms: r.alarms, AlarmChanges: r.changes, Complete: complete, Rows: r.rows,
		SpikeCrossedTargetT: -1, ScaleOutDecidedT: -1, ScaleOutReactionS: -1, ScaleInStartT: -1, BackAtMinT: -1, ScaleInDurationS: -1,
	}
	if !complete {
		// The generators' totals are missing; count what the timeline saw.
		for _, row := range r.rows {
			s.TotalRequests += row.RPS
			s.FailedRequests += row.Errors
		}
	}
	prevInService := cfg.Min
	for _, row := range r.rows {
		s.PeakDesired = max(s.PeakDesired, row.Desired)
		s.PeakP99ms = max(s.PeakP99ms, row.P99ms)
		if s.SpikeCrossedTargetT < 0 && row.T > r.spikeAt {
			atTarget := float64(max(prevInService, 1)*cfg.Capacity) * cfg.Target / 100
			if float64(row.RPS) > atTarget {
				// The row covers (T-1, T]: the load crossed during it.
				s.SpikeCrossedTargetT = float64(row.T - 1)
			}
		}
		prevInService = row.InService
		if s.BackAtMinT < 0 && row.T > r.spikeEnd && row.Desired == cfg.Min && row.InService == cfg.Min && row.Draining == 0 {
			s.BackAtMinT = row.T
		}
	}
	for _, d := range r.decisions {
		if s.ScaleOutDecidedT < 0 && d.To > d.From && d.T >= float64(r.spikeAt) {
			s.ScaleOutDecidedT = d.T
		}
		if s.ScaleInStartT < 0 && d.To < d.From && d.T >= float64(r.spikeAt) {
			s.ScaleInStartT = d.T
		}
	}
	if s.SpikeCrossedTargetT >= 0 && s.ScaleOutDecidedT >= 0 {
		s.ScaleOutReactionS = math.Max(0, s.ScaleOutDecidedT-s.SpikeCrossedTargetT)
	}
	if s.BackAtMinT >= 0 {
		s.ScaleInDurationS = float64(s.BackAtMinT - r.spikeEnd)
	}
	if s.ScaleInStartT >= 0 {
		end := len(r.rows) + 1
		if s.BackAtMinT >= 0 {
			end = s.BackAtMinT + 2
		}
		for _, row := range r.rows {
			if float64(row.T) >= math.Floor(s.ScaleInStartT) && row.T <= end {
				s.FailedDuringScaleIn += row.Errors
			}
		}
	}
	for _, a := range r.alarms {
		if strings.HasSuffix(a.Name, "-"+metric+"-high") {
			s.HighAlarm = a.Name
		}
	}
	for _, c := range r.changes {
		if c.Name != s.HighAlarm {
			continue
		}
		if c.To == "ALARM" && c.T > r.spikeAt {
			s.HighAlarmFired = true
		}
		if s.HighAlarmFired && c.From == "ALARM" && c.To != "ALARM" {
			s.HighAlarmCleared = true
		}
	}
	return s
}

func printSummary(w io.Writer, cfg Config, s *Summary) {
	fmt.Fprintln(w, "\nsummary")
	if s.Scenario == ScenarioSpot {
		printSpotSummary(w, cfg, s)
		return
	}
	if s.ScaleOutReactionS >= 0 {
		fmt.Fprintf(w, "  scale-out reaction: %.1fs from the spike crossing the target (t=%.0fs) to desired rising (t=%.1fs); peak desired %d\n",
			s.ScaleOutReactionS, s.SpikeCrossedTargetT, s.ScaleOutDecidedT, s.PeakDesired)
	} else {
		fmt.Fprintln(w, "  scale-out reaction: the fleet did not scale out")
	}
	pct := 0.0
	if s.TotalRequests > 0 {
		pct = 100 * float64(s.FailedRequests) / float64(s.TotalRequests)
	}
	fmt.Fprintf(w, "  failed requests: %d of %d (%.3f%%); %d during scale-in\n", s.FailedRequests, s.TotalRequests, pct, s.FailedDuringScaleIn)
	if s.ScaleInDurationS >= 0 {
		fmt.Fprintf(w, "  scale-in: back to %d instances %.0fs after the load dropped (first scale-in decision at t=%.1fs)\n", s.Min, s.ScaleInDurationS, s.ScaleInStartT)
	} else {
		fmt.Fprintf(w, "  scale-in: not back to %d instances by the end\n", s.Min)
	}
	fmt.Fprintf(w, "  peak p99: %.1fms\n", s.PeakP99ms)
	if s.HighAlarm != "" {
		fmt.Fprintf(w, "  alarm %s: reached ALARM during the spike: %v; left it after: %v\n", s.HighAlarm, s.HighAlarmFired, s.HighAlarmCleared)
	}
	printFleets(w, s.Fleets)
	if a := s.AWSAgent; a != nil {
		fmt.Fprintf(w, "  CloudWatch agent stand-in: %d datapoints sent, %d dropped%s\n", a.Sent, a.Dropped, a.lastErrNote())
	}
	fmt.Fprintf(w, "  report: %s/timeline.csv, %s/chart.svg, %s/summary.json\n", cfg.ReportDir, cfg.ReportDir, cfg.ReportDir)
}

// AgentCounts is the stand-in CloudWatch agent's tally.
type AgentCounts struct {
	Sent    int    `json:"sent"`
	Dropped int    `json:"dropped"`
	LastErr string `json:"last_error,omitempty"`
}

func (a AgentCounts) lastErrNote() string {
	if a.LastErr == "" {
		return ""
	}
	return " (last error: " + a.LastErr + ")"
}

// printSpotSummary is the spot scenario's summary: each interruption's
// moments, the least capacity in service, and failed requests.
func printSpotSummary(w io.Writer, cfg Config, s *Summary) {
	for _, i := range s.Interruptions {
		fmt.Fprintf(w, "  %s: notice t=%.2fs; draining %s after; replacement %s in service %s after; terminated %s after\n",
			i.Instance, i.NoticeT, since(i.NoticeT, i.DrainStartedT), orNone(i.Replacement), since(i.NoticeT, i.ReplacementInServiceT), since(i.NoticeT, i.TerminatedT))
	}
	fmt.Fprintf(w, "  in service: %d before the first notice, never fewer than %d after (%d missed reads)\n", s.PreNoticeInService, s.MinInServiceAfterNotice, s.SpotWatchMissed)
	pct := 0.0
	if s.TotalRequests > 0 {
		pct = 100 * float64(s.FailedRequests) / float64(s.TotalRequests)
	}
	fmt.Fprintf(w, "  failed requests: %d of %d (%.3f%%); %d unsent (every connection busy)\n", s.FailedRequests, s.TotalRequests, pct, s.UnsentRequests)
	fmt.Fprintf(w, "  report: %s/timeline.csv, %s/chart.svg, %s/summary.json\n", cfg.ReportDir, cfg.ReportDir, cfg.ReportDir)
}

// since is "1.23s" from a to b, or "never" when b was not seen.
func since(a, b float64) string {
	if b < 0 {
		return "never"
	}
	return fmt.Sprintf("%.2fs", b-a)
}

func orNone(s string) string {
	if s == "" {
		return "(none seen)"
	}
	return s
}
