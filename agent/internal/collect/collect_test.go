package collect

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/procfs"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func mustFS(t *testing.T, root string) procfs.FS {
	t.Helper()
	fs, err := procfs.NewFS(root)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// rooted is a source whose fixture root can move from t0 to t1.
type rooted struct {
	src     Source
	setRoot func(dir string)
}

// TestGolden reads each fixture at t0 and, two seconds later, at t1, and
// compares the second reading with testdata/<case>.golden (-update rewrites).
func TestGolden(t *testing.T) {
	cases := []struct {
		name    string
		fixture string
		build   func(t *testing.T) rooted
	}{
		{"host", "host", func(t *testing.T) rooted {
			cpu, mem, load, nt := &CPU{}, &Mem{}, &Load{}, &Net{}
			disk := &Disk{Path: "/", Statfs: func(string) (FSUsage, error) {
				return FSUsage{Blocks: 1000, Free: 300, Avail: 250}, nil
			}}
			return rooted{NewSet(cpu, mem, load, nt, disk), func(dir string) {
				fs := mustFS(t, filepath.Join(dir, "proc"))
				cpu.FS, mem.FS, load.FS, nt.FS = fs, fs, fs, fs
			}}
		}},
		{"host_loopback", "host", func(t *testing.T) rooted {
			nt := &Net{Loopback: true}
			return rooted{nt, func(dir string) { nt.FS = mustFS(t, filepath.Join(dir, "proc")) }}
		}},
		{"proctree", "work", func(t *testing.T) rooted {
			pt := &ProcTree{PID: 100, PageSize: 4096}
			return rooted{pt, func(dir string) { pt.FS = mustFS(t, filepath.Join(dir, "proc")) }}
		}},
		{"cgroup_limited", "work", func(t *testing.T) rooted {
			cg := &Cgroup{Path: "/shoal/i-1"}
			return rooted{cg, func(dir string) {
				cg.FS, cg.Root = mustFS(t, filepath.Join(dir, "proc")), filepath.Join(dir, "cgroup")
			}}
		}},
		{"cgroup_unlimited", "work", func(t *testing.T) rooted {
			cg := &Cgroup{Path: "/shoal/nolimit"}
			return rooted{cg, func(dir string) {
				cg.FS, cg.Root = mustFS(t, filepath.Join(dir, "proc")), filepath.Join(dir, "cgroup")
			}}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.build(t)
			t0 := time.Unix(1700000000, 0)
			r.setRoot(filepath.Join("testdata", tc.fixture, "t0"))
			first, err := r.src.Collect(t0)
			if err != nil {
				t.Fatalf("t0: %v", err)
			}
			for _, rate := range []string{MetricCPU, MetricNetRx, MetricNetTx} {
				if _, ok := first[rate]; ok {
					t.Errorf("t0: rate %s reported without a previous reading", rate)
				}
			}
			r.setRoot(filepath.Join("testdata", tc.fixture, "t1"))
			got, err := r.src.Collect(t0.Add(2 * time.Second))
			if err != nil {
				t.Fatalf("t1: %v", err)
			}
			for k, v := range got {
				got[k] = math.Round(v*1e6) / 1e6
			}
			b, _ := json.MarshalIndent(got, "", "  ")
			golden := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, append(b, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if string(want) != string(b)+"\n" {
				t.Errorf("got\n%s\nwant\n%s", b, want)
			}
		})
	}
}

func TestBusyPercent(t *testing.T) {
	cases := []struct {
		name      string
		prev, cur procfs.CPUStat
		want      float64
		ok        bool
	}{
		{"half busy", procfs.CPUStat{User: 1, Idle: 1}, procfs.CPUStat{User: 2, Idle: 2}, 50, true},
		{"iowait is idle", procfs.CPUStat{Idle: 1}, procfs.CPUStat{Idle: 2, Iowait: 1, System: 2}, 50, true},
		{"no time passed", procfs.CPUStat{User: 1}, procfs.CPUStat{User: 1}, 0, false},
		{"counters went back", procfs.CPUStat{User: 5, Idle: 5}, procfs.CPUStat{User: 1, Idle: 1}, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := BusyPercent(tc.prev, tc.cur)
			if ok != tc.ok || math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("BusyPercent = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestDiskUsedPercent(t *testing.T) {
	cases := []struct {
		name string
		u    FSUsage
		want float64
		ok   bool
	}{
		{"reserve excluded", FSUsage{Blocks: 100, Free: 50, Avail: 40}, 50 / 0.9, true},
		{"full", FSUsage{Blocks: 100, Free: 5, Avail: 0}, 100, true},
		{"empty fs", FSUsage{}, 0, false},
		{"nonsense", FSUsage{Blocks: 1, Free: 2}, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := DiskUsedPercent(tc.u)
			if ok != tc.ok || math.Abs(got-tc.want) > 1e-9 {
				t.Errorf("DiskUsedPercent = %v, %v; want %v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestSelectTree(t *testing.T) {
	stats := map[int]procfs.ProcStat{
		1:   {PID: 1, PPID: 0, PGRP: 1},
		100: {PID: 100, PPID: 1, PGRP: 100},
		101: {PID: 101, PPID: 100, PGRP: 100},
		102: {PID: 102, PPID: 101, PGRP: 102},
		150: {PID: 150, PPID: 1, PGRP: 100},
		151: {PID: 151, PPID: 150, PGRP: 151},
		200: {PID: 200, PPID: 1, PGRP: 200},
	}
	cases := []struct {
		name string
		root int
		want []int
	}{
		{"tree and group", 100, []int{100, 101, 102, 150, 151}},
		{"leaf", 102, []int{102}},
		{"group whose leader exited", 300, nil},
		{"unrelated", 200, []int{200}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := SelectTree(stats, tc.root)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for _, p := range tc.want {
				if _, ok := got[p]; !ok {
					t.Errorf("pid %d missing from %v", p, got)
				}
			}
		})
	}
}

func TestDedicatedCgroup(t *testing.T) {
	root := filepath.Join("testdata", "work", "t0")
	fs := mustFS(t, filepath.Join(root, "proc"))
	cases := []struct {
		name string
		pid  int
		want string
	}{
		{"cgroup holds only the tree", 100, "/shoal/i-1"},
		{"cgroup shared with others", 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DedicatedCgroup(fs, filepath.Join(root, "cgroup"), tc.pid)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("DedicatedCgroup(%d) = %q, want %q", tc.pid, got, tc.want)
			}
		})
	}
}

func TestProcTreeGone(t *testing.T) {
	pt := &ProcTree{FS: mustFS(t, filepath.Join("testdata", "work", "t0", "proc")), PID: 4242}
	if _, err := pt.Collect(time.Now()); !errors.Is(err, ErrNoProcess) {
		t.Errorf("err = %v, want ErrNoProcess", err)
	}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name    string
		edit    func(*Config)
		wantErr bool
	}{
		{"host default", func(*Config) {}, false},
		{"cgroup with pid", func(c *Config) { c.Scope, c.ScopePID = ScopeCgroup, 10 }, false},
		{"cgroup with path", func(c *Config) { c.Scope, c.Cgroup = ScopeCgroup, "/a" }, false},
		{"cgroup with nothing", func(c *Config) { c.Scope = ScopeCgroup }, true},
		{"auto without pid", func(c *Config) { c.Scope, c.Cgroup = ScopeCgroup, "auto" }, true},
		{"host with pid", func(c *Config) { c.ScopePID = 3 }, true},
		{"unknown scope", func(c *Config) { c.Scope = "vm" }, true},
		{"no procfs root", func(c *Config) { c.ProcRoot = "" }, true},
		{"zero config", func(c *Config) { *c = Config{} }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.edit(&cfg)
			err := cfg.Validate()
			if (err != nil) != tc.wantErr {
				t.Fatalf("Validate() = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Errorf("error %v does not wrap ErrConfig", err)
			}
		})
	}
}

func TestNewHostOnRealProc(t *testing.T) {
	if _, err := os.Stat("/proc/stat"); err != nil {
		t.Skip("no /proc on this machine")
	}
	s, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	// Rate sources need two readings with ticks counted in between: a
	// burn of fixed work runs to its end between them.
	if _, err := s.Collect(time.Now()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "/bin/sh", "-c", burnLoop).CombinedOutput(); err != nil {
		t.Fatalf("burn: %v\n%s", err, out)
	}
	got, err := s.Collect(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{MetricCPU, MetricMem, MetricLoad1, MetricNetRx, MetricNetTx, MetricDisk} {
		v, ok := got[m]
		if !ok || v < 0 || math.IsNaN(v) {
			t.Errorf("%s = %v, %v", m, v, ok)
		}
	}
}
