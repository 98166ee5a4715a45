package collect

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/procfs"
)

// TestProcTreeOnRealProc measures a real workload whose CPU is burnt by a
// child of the root process, so only walking the tree can see it.
func TestProcTreeOnRealProc(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc on this machine")
	}
	cmd := exec.Command("/bin/sh", "-c", `sh -c 'while :; do :; done' & wait`)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	fs, err := procfs.NewFS("/proc")
	if err != nil {
		t.Fatal(err)
	}
	pt := &ProcTree{FS: fs, PID: cmd.Process.Pid}
	deadline := time.Now().Add(10 * time.Second)
	var got map[string]float64
	for {
		got, err = pt.Collect(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		// One busy core is 100/NumCPU percent of the host; a loaded
		// machine gives it less, but never nothing for long.
		if got[MetricCPU] > 5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got[MetricCPU] <= 5 {
		t.Errorf("cpu of a busy child = %v%%, want > 5%%", got[MetricCPU])
	}
	if got[MetricMem] <= 0 {
		t.Errorf("mem = %v, want the tree's RSS share", got[MetricMem])
	}
}

// TestCgroupOnThisMachine reads this test's own cgroup v2, when there is one.
func TestCgroupOnThisMachine(t *testing.T) {
	fs, err := procfs.NewFS("/proc")
	if err != nil {
		t.Skip("no /proc")
	}
	self, err := fs.Self()
	if err != nil {
		t.Fatal(err)
	}
	cgs, err := self.Cgroups()
	if err != nil {
		t.Fatal(err)
	}
	path := ""
	for _, cg := range cgs {
		if cg.HierarchyID == 0 {
			path = cg.Path
		}
	}
	if path == "" {
		t.Skip("not on cgroup v2")
	}
	dir := filepath.Join("/sys/fs/cgroup", path)
	if _, err := os.Stat(filepath.Join(dir, "cpu.stat")); err != nil {
		t.Skipf("cgroup %s has no cpu.stat readable here", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "memory.current")); err != nil {
		t.Skipf("cgroup %s has no memory controller", dir)
	}
	cg := &Cgroup{FS: fs, Root: "/sys/fs/cgroup", Path: path}
	t0 := time.Now()
	if _, err := cg.Collect(t0); err != nil {
		t.Fatal(err)
	}
	got, err := cg.Collect(t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if m := got[MetricMem]; m <= 0 || m > 100 {
		t.Errorf("mem = %v, want a share in (0, 100]", m)
	}
	if _, ok := got[MetricCPU]; !ok {
		t.Errorf("no cpu on the second reading: %v", got)
	}
}
