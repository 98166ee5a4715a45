package simulate

// Score is one policy's elasticity scorecard. The first four metrics and
// jitter are the SPEC Research Group's elasticity metrics as BUNGEE defines
// them (Herbst et al., "BUNGEE: an elasticity benchmark for self-adaptive
// IaaS cloud environments", SEAMS 2015), with demand and supply counted in
// instances and sampled once a second.
type Score struct {
	Policy string `json:"policy"`
	// AccuracyU and AccuracyO are the mean under- and over-provisioned
	// instances: mean of max(d−s, 0) and of max(s−d, 0).
	AccuracyU float64 `json:"accuracy_u"`
	AccuracyO float64 `json:"accuracy_o"`
	// TimeshareU and TimeshareO are the share of time with s < d and s > d.
	TimeshareU float64 `json:"timeshare_u"`
	TimeshareO float64 `json:"timeshare_o"`
	// Jitter is (supply changes − demand changes) per minute: positive
	// means the policy moves more often than demand does (flapping),
	// negative that it is too slow to follow.
	Jitter float64 `json:"jitter"`
	// InstanceHours counts every billed instance: pending, serving and
	// draining.
	InstanceHours float64 `json:"instance_hours"`
	// InstanceSeconds is the same count in whole instance-seconds (the
	// model samples once a second), and CostUSD is InstanceHours at the
	// run's price per instance-hour (--price-per-hour).
	InstanceSeconds int64   `json:"instance_seconds"`
	CostUSD         float64 `json:"cost_usd"`
	// SLOBreachS is the seconds in which utilisation exceeded 100 %:
	// demand above what the serving instances can take.
	SLOBreachS int64 `json:"slo_breach_s"`
}

// Scorecard scores one run. demand is in requests/s and demandInst in
// instances, supply is serving instances and billed every instance paid
// for, all one sample per second.
func Scorecard(policy string, demand []float64, demandInst, supply, billed []int32, capacity float64) Score {
	sc := Score{Policy: policy}
	n := len(demandInst)
	if n == 0 {
		return sc
	}
	var under, over, tu, to float64
	var billedSecs int64
	var supplyChanges, demandChanges int
	for i := 0; i < n; i++ {
		d, s := demandInst[i], supply[i]
		if d > s {
			under += float64(d - s)
			tu++
		} else if s > d {
			over += float64(s - d)
			to++
		}
		if i > 0 {
			if s != supply[i-1] {
				supplyChanges++
			}
			if d != demandInst[i-1] {
				demandChanges++
			}
		}
		billedSecs += int64(billed[i])
		if demand[i] > float64(s)*capacity {
			sc.SLOBreachS++
		}
	}
	fn := float64(n)
	sc.AccuracyU = under / fn
	sc.AccuracyO = over / fn
	sc.TimeshareU = tu / fn
	sc.TimeshareO = to / fn
	sc.Jitter = float64(supplyChanges-demandChanges) / (fn / 60)
	sc.InstanceSeconds = billedSecs
	sc.InstanceHours = float64(billedSecs) / 3600
	return sc
}
