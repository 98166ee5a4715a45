package ingest

import "math"

// maxColumns bounds the metric names one instance's ring keeps, so an agent
// cycling custom names cannot grow the leader's memory without bound.
const maxColumns = 64

// ring holds one instance's recent samples, column by column in float32: at
// 15 minutes at 1 s and 10 metrics that is about 43 KB per instance, where a
// map per sample would cost ten times more. float32 keeps 7 significant
// digits, more than scaling needs.
type ring struct {
	size int
	ts   []int64
	cols map[string][]float32
	head int // oldest slot once full
	last map[string]float64
	// lastTS is the newest timestamp added.
	lastTS int64
}

func newRing(size int) *ring {
	return &ring{size: size, cols: map[string][]float32{}, last: map[string]float64{}}
}

// add appends a sample; it returns false for one not newer than the newest
// (a replay after a reconnect), which would break the time order.
func (r *ring) add(ts int64, vals map[string]float64) bool {
	if len(r.ts) > 0 && ts <= r.lastTS {
		return false
	}
	var slot int
	if len(r.ts) < r.size {
		slot = len(r.ts)
		r.ts = append(r.ts, ts)
		for name, c := range r.cols {
			r.cols[name] = append(c, float32(math.NaN()))
		}
	} else {
		slot = r.head
		r.ts[slot] = ts
		r.head = (r.head + 1) % r.size
		for _, c := range r.cols {
			c[slot] = float32(math.NaN())
		}
	}
	for name, v := range vals {
		c, ok := r.cols[name]
		if !ok {
			if len(r.cols) >= maxColumns {
				continue
			}
			c = make([]float32, len(r.ts))
			for i := range c {
				c[i] = float32(math.NaN())
			}
			r.cols[name] = c
		}
		c[slot] = float32(v)
		r.last[name] = v
	}
	r.lastTS = ts
	return true
}

// means returns each metric's mean over the samples at or after since, and
// how many samples that was.
func (r *ring) means(since int64) (map[string]float64, int) {
	n := len(r.ts)
	out := map[string]float64{}
	if n == 0 || r.lastTS < since {
		return out, 0
	}
	// Walk newest to oldest and stop at the first sample before since.
	start := 0
	if n == r.size {
		start = r.head
	}
	var idx []int
	for i := n - 1; i >= 0; i-- {
		p := (start + i) % n
		if r.ts[p] < since {
			break
		}
		idx = append(idx, p)
	}
	for name, c := range r.cols {
		var sum float64
		var k int
		for _, p := range idx {
			if v := c[p]; !math.IsNaN(float64(v)) {
				sum += float64(v)
				k++
			}
		}
		if k > 0 {
			out[name] = sum / float64(k)
		}
	}
	return out, len(idx)
}
