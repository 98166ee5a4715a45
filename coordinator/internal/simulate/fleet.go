package simulate

import "sort"

// member is one instance in the fleet model. Times are simulated seconds.
type member struct {
	id        int
	inService int64 // second it comes into service (launch + launch delay)
	drainEnd  int64 // second a draining instance is terminated; 0 if not draining
	draining  bool
}

// fleet is the model: instances launch, come into service after the launch
// delay, report metrics after the warm-up, and on scale-in stop serving at
// once but stay billed until their drain ends.
type fleet struct {
	cfg     Config
	members []*member
	nextID  int
}

func newFleet(cfg Config, initial int32) *fleet {
	f := &fleet{cfg: cfg}
	for i := int32(0); i < initial; i++ {
		// Initial instances have been in service for long enough to be warm.
		f.members = append(f.members, &member{id: f.nextID, inService: -longAgo})
		f.nextID++
	}
	return f
}

// advance removes instances whose drain has ended by second now.
func (f *fleet) advance(now int64) {
	kept := f.members[:0]
	for _, m := range f.members {
		if m.draining && now >= m.drainEnd {
			continue
		}
		kept = append(kept, m)
	}
	f.members = kept
}

// desired is the capacity the group has or is getting: pending plus in
// service; draining instances count as gone.
func (f *fleet) desired() int32 {
	var n int32
	for _, m := range f.members {
		if !m.draining {
			n++
		}
	}
	return n
}

// serving lists instances in service at second now.
func (f *fleet) serving(now int64) []*member {
	var out []*member
	for _, m := range f.members {
		if !m.draining && now >= m.inService {
			out = append(out, m)
		}
	}
	return out
}

// servingCount is len(serving(now)) without the slice.
func (f *fleet) servingCount(now int64) int {
	n := 0
	for _, m := range f.members {
		if !m.draining && now >= m.inService {
			n++
		}
	}
	return n
}

// fillBetween writes serving and billed counts for the seconds after now
// (supply[k] and billed[k] are second now+1+k) while nobody changes the
// desired capacity: only launches coming into service and drains ending
// move them, so each member is visited once rather than once a second.
func (f *fleet) fillBetween(now int64, supply, billed []int32) {
	n := int64(len(supply))
	var s0, b0 int32
	in := make([]int32, n+1)  // in[k]: members coming into service at now+1+k
	out := make([]int32, n+1) // out[k]: drains ending at now+1+k
	for _, m := range f.members {
		switch {
		case m.draining:
			b0++
			if d := m.drainEnd - now - 1; d < n {
				out[max(d, 0)]++
			}
		default:
			b0++
			if now >= m.inService {
				s0++
			} else if d := m.inService - now - 1; d < n {
				in[d]++
			}
		}
	}
	for k := int64(0); k < n; k++ {
		s0 += in[k]
		b0 -= out[k]
		supply[k], billed[k] = s0, b0
	}
}

// billed counts every instance that costs money: pending, serving, draining.
func (f *fleet) billed() int { return len(f.members) }

// setDesired launches or removes instances. Scale-in takes pending
// instances first (they serve nobody), then the newest in service.
func (f *fleet) setDesired(n int32, now int64) {
	cur := f.desired()
	for ; cur < n; cur++ {
		f.members = append(f.members, &member{id: f.nextID, inService: now + secs(f.cfg.LaunchDelay)})
		f.nextID++
	}
	if cur <= n {
		return
	}
	var live []*member
	for _, m := range f.members {
		if !m.draining {
			live = append(live, m)
		}
	}
	sort.SliceStable(live, func(i, j int) bool { return live[i].inService > live[j].inService })
	var gone = map[*member]bool{}
	for _, m := range live[:cur-n] {
		if now < m.inService {
			gone[m] = true // a pending launch is cancelled outright
			continue
		}
		m.draining = true
		m.drainEnd = now + secs(f.cfg.Drain)
	}
	if len(gone) > 0 {
		kept := f.members[:0]
		for _, m := range f.members {
			if !gone[m] {
				kept = append(kept, m)
			}
		}
		f.members = kept
	}
	f.advance(now)
}

// longAgo is how long before the trace the initial instances came into
// service: far enough to be warm, small enough for time.Duration.
const longAgo = 7 * 24 * 3600
