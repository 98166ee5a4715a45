package collect

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/procfs"
)

// Cgroup measures one cgroup v2: cpu.stat usage_usec against cpu.max (or the
// host's CPUs), memory.current against memory.max (or the host's memory).
// procfs reads /proc only, so these small key-value files are parsed here.
type Cgroup struct {
	FS   procfs.FS
	Root string
	Path string

	prevAt    time.Time
	prevUsage float64
	havePrev  bool
}

// Collect returns cpu (from the second call on) and mem.
func (c *Cgroup) Collect(now time.Time) (map[string]float64, error) {
	dir := filepath.Join(c.Root, c.Path)
	out := map[string]float64{}
	usage, err := readCPUStatUsage(filepath.Join(dir, "cpu.stat"))
	if err != nil {
		return nil, err
	}
	prevAt, prevUsage, had := c.prevAt, c.prevUsage, c.havePrev
	c.prevAt, c.prevUsage, c.havePrev = now, usage, true
	if dt := now.Sub(prevAt).Seconds(); had && dt > 0 && usage >= prevUsage {
		cores, err := cpuLimit(filepath.Join(dir, "cpu.max"), c.FS)
		if err != nil {
			return nil, err
		}
		out[MetricCPU] = 100 * (usage - prevUsage) / dt / cores
	}
	cur, err := readUint(filepath.Join(dir, "memory.current"))
	if err != nil {
		return out, err
	}
	limit, err := memLimit(filepath.Join(dir, "memory.max"), c.FS)
	if err != nil {
		return out, err
	}
	out[MetricMem] = 100 * float64(cur) / limit
	return out, nil
}

// readCPUStatUsage returns usage_usec from a cpu.stat file, in seconds.
func readCPUStatUsage(path string) (float64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("cgroup cpu: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok || k != "usage_usec" {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("cgroup cpu: %s usage_usec %q: %w", path, v, err)
		}
		return float64(n) / 1e6, nil
	}
	return 0, fmt.Errorf("cgroup cpu: %s usage_usec: %w", path, ErrMissingField)
}

// cpuLimit is the cgroup's CPU quota in cores, or the host's CPU count when
// cpu.max says "max" or is absent (the cpu controller not enabled).
func cpuLimit(path string, fs procfs.FS) (float64, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		quota, period, _ := strings.Cut(strings.TrimSpace(string(b)), " ")
		if quota != "max" {
			q, err1 := strconv.ParseFloat(quota, 64)
			p, err2 := strconv.ParseFloat(period, 64)
			// NaN and Inf parse as floats; a quota from them would make cpu NaN.
			if err1 != nil || err2 != nil || !(q > 0) || !(p > 0) || math.IsInf(q, 0) || math.IsInf(p, 0) {
				return 0, fmt.Errorf("cgroup cpu: %s %q is not \"QUOTA PERIOD\"", path, b)
			}
			return q / p, nil
		}
	} else if !os.IsNotExist(err) {
		return 0, fmt.Errorf("cgroup cpu: %w", err)
	}
	return hostCPUs(fs)
}

func hostCPUs(fs procfs.FS) (float64, error) {
	st, err := fs.Stat()
	if err != nil {
		return 0, fmt.Errorf("cpu count: %w", err)
	}
	if len(st.CPU) == 0 {
		return 0, fmt.Errorf("cpu count: per-cpu lines: %w", ErrMissingField)
	}
	return float64(len(st.CPU)), nil
}

// memLimit is memory.max in bytes, or the host's memory when it says "max".
func memLimit(path string, fs procfs.FS) (float64, error) {
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return 0, fmt.Errorf("cgroup mem: %w", err)
	}
	if s := strings.TrimSpace(string(b)); err == nil && s != "max" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			return 0, fmt.Errorf("cgroup mem: %s %q is not a byte count", path, s)
		}
		return float64(n), nil
	}
	t, err := memTotalBytes(fs)
	if err != nil {
		return 0, fmt.Errorf("cgroup mem: %w", err)
	}
	return t, nil
}

func readUint(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("cgroup: %w", err)
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("cgroup: %s: %w", path, err)
	}
	return n, nil
}

// DedicatedCgroup returns pid's cgroup v2 path when that cgroup holds only
// pid's process tree, and "" when it is shared (the root cgroup, a login
// session, the local cloud running many instances in one service's cgroup):
// a shared cgroup's figures would not be this workload's.
func DedicatedCgroup(fs procfs.FS, root string, pid int) (string, error) {
	p, err := fs.Proc(pid)
	if err != nil {
		return "", fmt.Errorf("scope pid %d: %w", pid, err)
	}
	cgs, err := p.Cgroups()
	if err != nil {
		return "", fmt.Errorf("scope pid %d cgroup: %w", pid, err)
	}
	path := ""
	for _, cg := range cgs {
		if cg.HierarchyID == 0 {
			path = cg.Path
		}
	}
	if path == "" || path == "/" {
		return "", nil
	}
	b, err := os.ReadFile(filepath.Join(root, path, "cgroup.procs"))
	if err != nil {
		return "", fmt.Errorf("scope pid %d cgroup %s: %w", pid, path, err)
	}
	tree, err := treePIDs(fs, pid)
	if err != nil {
		return "", err
	}
	for _, f := range strings.Fields(string(b)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return "", fmt.Errorf("cgroup %s: cgroup.procs entry %q: %w", path, f, err)
		}
		if _, in := tree[n]; !in {
			return "", nil
		}
	}
	return path, nil
}
