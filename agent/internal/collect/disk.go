package collect

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// FSUsage is what statfs(2) says about a filesystem, in blocks.
type FSUsage struct {
	Blocks uint64
	Free   uint64 // free blocks, root's reserve included
	Avail  uint64 // free blocks an unprivileged user may use
}

// Statfs reads FSUsage with statfs(2). procfs has no statfs reader, so the
// syscall is called directly.
func Statfs(path string) (FSUsage, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return FSUsage{}, err
	}
	return FSUsage{Blocks: st.Blocks, Free: st.Bfree, Avail: st.Bavail}, nil
}

// Disk is the used share of one filesystem (the root by default).
type Disk struct {
	Path   string
	Statfs func(path string) (FSUsage, error)
}

// Collect returns disk.
func (d *Disk) Collect(time.Time) (map[string]float64, error) {
	u, err := d.Statfs(d.Path)
	if err != nil {
		return nil, fmt.Errorf("disk %s: %w", d.Path, err)
	}
	pct, ok := DiskUsedPercent(u)
	if !ok {
		return nil, nil
	}
	return map[string]float64{MetricDisk: pct}, nil
}

// DiskUsedPercent is used / (used + avail), as df(1) computes it: the blocks
// reserved for root count neither as used nor as available.
func DiskUsedPercent(u FSUsage) (float64, bool) {
	if u.Free > u.Blocks {
		return 0, false
	}
	used := u.Blocks - u.Free
	if used+u.Avail == 0 {
		return 0, false
	}
	return 100 * float64(used) / float64(used+u.Avail), true
}
