package collect

import (
	"fmt"
	"time"

	"github.com/prometheus/procfs"
)

// Load is the 1-minute load average from /proc/loadavg. It is host-wide in
// every scope.
type Load struct {
	FS procfs.FS
}

// Collect returns load1.
func (l *Load) Collect(time.Time) (map[string]float64, error) {
	la, err := l.FS.LoadAvg()
	if err != nil {
		return nil, fmt.Errorf("load1: %w", err)
	}
	return map[string]float64{MetricLoad1: la.Load1}, nil
}
