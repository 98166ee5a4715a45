package collect

import (
	"fmt"
	"time"

	"github.com/prometheus/procfs"
)

// CPU is host CPU utilisation from /proc/stat.
type CPU struct {
	FS   procfs.FS
	prev *procfs.CPUStat
}

// Collect returns cpu from the second call on.
func (c *CPU) Collect(time.Time) (map[string]float64, error) {
	st, err := c.FS.Stat()
	if err != nil {
		return nil, fmt.Errorf("cpu: %w", err)
	}
	cur := st.CPUTotal
	prev := c.prev
	c.prev = &cur
	if prev == nil {
		return nil, nil
	}
	pct, ok := BusyPercent(*prev, cur)
	if !ok {
		return nil, nil
	}
	return map[string]float64{MetricCPU: pct}, nil
}

// BusyPercent is the share of CPU time between two /proc/stat readings that
// was not idle or iowait. ok is false when no time passed (or the counters
// went back, as after a CPU was hot-unplugged).
func BusyPercent(prev, cur procfs.CPUStat) (float64, bool) {
	idle := (cur.Idle + cur.Iowait) - (prev.Idle + prev.Iowait)
	total := cpuTotal(cur) - cpuTotal(prev)
	if total <= 0 || idle < 0 || idle > total {
		return 0, false
	}
	return 100 * (total - idle) / total, true
}

// Guest time is already counted in User and Nice, so it is left out.
func cpuTotal(s procfs.CPUStat) float64 {
	return s.User + s.Nice + s.System + s.Idle + s.Iowait + s.IRQ + s.SoftIRQ + s.Steal
}
