package collect

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/procfs"
)

// ErrMissingField means a /proc or cgroup file lacks a field the agent needs.
var ErrMissingField = errors.New("missing field")

// Mem is host memory used, from /proc/meminfo: total minus available, the
// figure `free` calls used (page cache that can be reclaimed is not "used").
type Mem struct {
	FS procfs.FS
}

// Collect returns mem.
func (m *Mem) Collect(time.Time) (map[string]float64, error) {
	mi, err := m.FS.Meminfo()
	if err != nil {
		return nil, fmt.Errorf("mem: %w", err)
	}
	pct, err := MemUsedPercent(mi)
	if err != nil {
		return nil, err
	}
	return map[string]float64{MetricMem: pct}, nil
}

// MemUsedPercent is (MemTotal - MemAvailable) / MemTotal.
func MemUsedPercent(mi procfs.Meminfo) (float64, error) {
	if mi.MemTotal == nil || *mi.MemTotal == 0 {
		return 0, fmt.Errorf("mem: MemTotal: %w", ErrMissingField)
	}
	if mi.MemAvailable == nil {
		return 0, fmt.Errorf("mem: MemAvailable: %w", ErrMissingField)
	}
	total, avail := float64(*mi.MemTotal), float64(*mi.MemAvailable)
	return 100 * (total - avail) / total, nil
}

func memTotalBytes(fs procfs.FS) (float64, error) {
	mi, err := fs.Meminfo()
	if err != nil {
		return 0, err
	}
	if mi.MemTotalBytes == nil || *mi.MemTotalBytes == 0 {
		return 0, fmt.Errorf("MemTotal: %w", ErrMissingField)
	}
	return float64(*mi.MemTotalBytes), nil
}
