package collect

import (
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/prometheus/procfs"
)

// Vocabulary names of the built-in metrics (ARCHITECTURE.md).
const (
	MetricCPU   = "cpu"
	MetricMem   = "mem"
	MetricLoad1 = "load1"
	MetricNetRx = "net_rx"
	MetricNetTx = "net_tx"
	MetricDisk  = "disk"
)

// Scope says what the agent measures.
type Scope string

const (
	// ScopeHost measures the whole machine (an EC2 instance).
	ScopeHost Scope = "host"
	// ScopeCgroup measures one workload: its cgroup v2, or its process tree
	// when it has no cgroup of its own.
	ScopeCgroup Scope = "cgroup"
)

// ErrConfig wraps every configuration error.
var ErrConfig = errors.New("invalid collector config")

// Config chooses the sources and where they read; start from DefaultConfig.
type Config struct {
	// ProcRoot is the procfs mount point.
	ProcRoot string
	// CgroupRoot is the cgroup v2 mount point.
	CgroupRoot string
	// DiskPath is the filesystem whose usage is "disk".
	DiskPath string
	Scope    Scope
	// Cgroup is the workload's cgroup path below CgroupRoot, or "auto" to use
	// ScopePID's cgroup when that cgroup holds nothing but ScopePID's tree.
	Cgroup string
	// ScopePID roots the measured process tree in cgroup scope.
	ScopePID int
	// NetLoopback counts the loopback interface too; the local cloud sends
	// all its traffic over lo.
	NetLoopback bool
}

// DefaultConfig measures the whole host through /proc and /sys/fs/cgroup,
// with / as the disk.
func DefaultConfig() Config {
	return Config{
		ProcRoot:   procfs.DefaultMountPoint,
		CgroupRoot: "/sys/fs/cgroup",
		DiskPath:   "/",
		Scope:      ScopeHost,
	}
}

// Validate says which field is wrong and why.
func (c Config) Validate() error {
	switch {
	case c.ProcRoot == "":
		return fmt.Errorf("%w: procfs root is required", ErrConfig)
	case c.CgroupRoot == "":
		return fmt.Errorf("%w: cgroupfs root is required", ErrConfig)
	case c.DiskPath == "":
		return fmt.Errorf("%w: disk path is required", ErrConfig)
	}
	switch c.Scope {
	case ScopeHost:
		if c.Cgroup != "" || c.ScopePID != 0 {
			return fmt.Errorf("%w: scope host takes no cgroup (%q) or scope pid (%d)", ErrConfig, c.Cgroup, c.ScopePID)
		}
	case ScopeCgroup:
		if c.ScopePID < 0 {
			return fmt.Errorf("%w: scope pid (%d) must be > 0", ErrConfig, c.ScopePID)
		}
		if c.Cgroup == "" && c.ScopePID == 0 {
			return fmt.Errorf("%w: scope cgroup needs a cgroup path or a scope pid", ErrConfig)
		}
		if c.Cgroup == "auto" && c.ScopePID == 0 {
			return fmt.Errorf("%w: cgroup \"auto\" needs a scope pid", ErrConfig)
		}
	default:
		return fmt.Errorf("%w: scope %q must be host or cgroup", ErrConfig, c.Scope)
	}
	return nil
}

// Source is one metric source. Rate sources keep their previous reading and
// return nothing on their first call.
type Source interface {
	Collect(now time.Time) (map[string]float64, error)
}

// Help is the help text of each built-in metric, used by the agent's own
// /metrics. The network and disk texts say they are host-wide, because on a
// shared host (the local cloud) the kernel keeps no per-workload figure.
func Help(scope Scope) map[string]string {
	h := map[string]string{
		MetricCPU:   "CPU utilisation, percent of the host's CPUs.",
		MetricMem:   "Memory used, percent of the host's memory.",
		MetricLoad1: "1-minute load average of the host.",
		MetricNetRx: "Network receive, bytes/s, summed over the host's interfaces.",
		MetricNetTx: "Network transmit, bytes/s, summed over the host's interfaces.",
		MetricDisk:  "Root filesystem used, percent.",
	}
	if scope == ScopeCgroup {
		h[MetricCPU] = "CPU used by the workload (cgroup or process tree), percent of its CPU limit or of the host's CPUs."
		h[MetricMem] = "Memory used by the workload (cgroup or process tree), percent of its memory limit or of the host's memory."
		h[MetricLoad1] = "1-minute load average. HOST-WIDE: the kernel keeps no per-workload load average."
		h[MetricNetRx] = "Network receive, bytes/s. HOST-WIDE: on a shared host this is every workload's traffic, not this instance's."
		h[MetricNetTx] = "Network transmit, bytes/s. HOST-WIDE: on a shared host this is every workload's traffic, not this instance's."
		h[MetricDisk] = "Root filesystem used, percent. HOST-WIDE: the filesystem is shared by every workload on the host."
	}
	return h
}

// Set runs several sources as one.
type Set struct {
	sources []Source
}

// New builds the sources that cfg asks for.
func New(cfg Config) (*Set, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	fs, err := procfs.NewFS(cfg.ProcRoot)
	if err != nil {
		return nil, fmt.Errorf("procfs root %q: %w", cfg.ProcRoot, err)
	}
	shared := []Source{
		&Load{FS: fs},
		&Net{FS: fs, Loopback: cfg.NetLoopback},
		&Disk{Path: cfg.DiskPath, Statfs: Statfs},
	}
	if cfg.Scope == ScopeHost {
		return &Set{sources: append([]Source{&CPU{FS: fs}, &Mem{FS: fs}}, shared...)}, nil
	}
	cg := cfg.Cgroup
	if cg == "auto" {
		cg, err = DedicatedCgroup(fs, cfg.CgroupRoot, cfg.ScopePID)
		if err != nil {
			return nil, err
		}
	}
	var work Source
	if cg != "" {
		work = &Cgroup{FS: fs, Root: cfg.CgroupRoot, Path: cg}
	} else {
		work = &ProcTree{FS: fs, PID: cfg.ScopePID}
	}
	return &Set{sources: append([]Source{work}, shared...)}, nil
}

// NewSet runs the given sources; tests use it to run fixtures.
func NewSet(sources ...Source) *Set { return &Set{sources: sources} }

// Collect reads every source. A failing source does not hide the others: the
// values read are returned with the joined errors.
func (s *Set) Collect(now time.Time) (map[string]float64, error) {
	out := make(map[string]float64, 8)
	var errs []error
	for _, src := range s.sources {
		v, err := src.Collect(now)
		if err != nil {
			errs = append(errs, err)
		}
		maps.Copy(out, v)
	}
	return out, errors.Join(errs...)
}
