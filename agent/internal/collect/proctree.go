package collect

import (
	"fmt"
	"os"
	"time"

	"github.com/prometheus/procfs"
)

// ProcTree measures a workload that has no cgroup of its own: the process
// rooted at PID, its descendants and the members of process group PID (the
// local cloud starts each instance as a process group).
type ProcTree struct {
	FS procfs.FS

	PID int
	// PageSize converts RSS pages to bytes; 0 means the running kernel's.
	PageSize int

	prevAt   time.Time
	prevCPU  float64
	havePrev bool
}

// Collect returns cpu (from the second call on) and mem.
func (t *ProcTree) Collect(now time.Time) (map[string]float64, error) {
	stats, err := treeStats(t.FS, t.PID)
	if err != nil {
		return nil, err
	}
	page := t.PageSize
	if page == 0 {
		page = os.Getpagesize()
	}
	cpuSec, rss := TreeTotals(stats, page)
	out := map[string]float64{}
	prevAt, prevCPU, had := t.prevAt, t.prevCPU, t.havePrev
	t.prevAt, t.prevCPU, t.havePrev = now, cpuSec, true
	// A member exiting unreaped takes its time with it; skip that reading
	// rather than report negative CPU.
	if dt := now.Sub(prevAt).Seconds(); had && dt > 0 && cpuSec >= prevCPU {
		cores, err := hostCPUs(t.FS)
		if err != nil {
			return nil, err
		}
		out[MetricCPU] = 100 * (cpuSec - prevCPU) / dt / cores
	}
	total, err := memTotalBytes(t.FS)
	if err != nil {
		return out, fmt.Errorf("process tree mem: %w", err)
	}
	out[MetricMem] = 100 * float64(rss) / total
	return out, nil
}

// TreeTotals sums CPU seconds and resident bytes over processes. CPU counts
// children already waited for (cutime, cstime), so time does not vanish from
// the sum when a member of the tree exits and is reaped by another member.
func TreeTotals(stats []procfs.ProcStat, pageSize int) (cpuSeconds float64, rssBytes uint64) {
	const userHZ = 100 // as procfs assumes; see ProcStat.CPUTime
	var ticks int
	for _, s := range stats {
		ticks += int(s.UTime+s.STime) + s.CUTime + s.CSTime
		rssBytes += uint64(s.RSS) * uint64(pageSize)
	}
	return float64(ticks) / userHZ, rssBytes
}

// ErrNoProcess means the scope pid no longer exists.
var ErrNoProcess = fmt.Errorf("scope process gone")

func treeStats(fs procfs.FS, pid int) ([]procfs.ProcStat, error) {
	all, err := fs.AllProcs()
	if err != nil {
		return nil, fmt.Errorf("process tree: %w", err)
	}
	stats := make(map[int]procfs.ProcStat, len(all))
	for _, p := range all {
		// Processes exit between listing and reading: skip them.
		if s, err := p.Stat(); err == nil {
			stats[s.PID] = s
		}
	}
	members := SelectTree(stats, pid)
	if len(members) == 0 {
		return nil, fmt.Errorf("%w: pid %d", ErrNoProcess, pid)
	}
	out := make([]procfs.ProcStat, 0, len(members))
	for p := range members {
		out = append(out, stats[p])
	}
	return out, nil
}

func treePIDs(fs procfs.FS, pid int) (map[int]struct{}, error) {
	st, err := treeStats(fs, pid)
	if err != nil {
		return nil, err
	}
	m := make(map[int]struct{}, len(st))
	for _, s := range st {
		m[s.PID] = struct{}{}
	}
	return m, nil
}

// SelectTree returns root, its descendants, and the members of process group
// root (and their descendants), when root exists or leads a group.
func SelectTree(stats map[int]procfs.ProcStat, root int) map[int]struct{} {
	children := map[int][]int{}
	members := map[int]struct{}{}
	var queue []int
	if _, ok := stats[root]; ok {
		queue = append(queue, root)
	}
	for pid, s := range stats {
		children[s.PPID] = append(children[s.PPID], pid)
		if s.PGRP == root {
			queue = append(queue, pid)
		}
	}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if _, seen := members[p]; seen {
			continue
		}
		members[p] = struct{}{}
		queue = append(queue, children[p]...)
	}
	return members
}
