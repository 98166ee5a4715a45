package collect

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/procfs"
)

// burnLoop is a fixed amount of shell work: tens of milliseconds of CPU or
// more, so the kernel's tick counters advance while it runs. Tests wait for
// it to finish instead of sleeping for a guessed time.
const burnLoop = `i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done`

// TestProcTreeOnRealProc measures a real workload whose CPU is burnt by a
// grandchild of the root process, so only walking the tree can see it.
func TestProcTreeOnRealProc(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc on this machine")
	}
	// The grandchild burns a fixed amount of work once told to, says so,
	// and stays alive (exec keeps its CPU time on the same pid), so its CPU
	// is neither the root's own nor in the root's cutime.
	goR, goW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer goR.Close()
	defer goW.Close()
	cmd := exec.Command("/bin/sh", "-c", `sh -c 'read go <&3; `+burnLoop+`; echo burnt; exec sleep 600' & wait`)
	cmd.ExtraFiles = []*os.File{goR}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		_ = cmd.Wait()
	})
	burnt := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err == nil && line != "burnt\n" {
			err = fmt.Errorf("child said %q", line)
		}
		burnt <- err
	}()
	fs, err := procfs.NewFS("/proc")
	if err != nil {
		t.Fatal(err)
	}
	pt := &ProcTree{FS: fs, PID: cmd.Process.Pid}
	// The clock is injected: the rate's denominator is the 1 s the test
	// says passed, its numerator the CPU the kernel counted meanwhile.
	t0 := time.Now()
	if _, err := pt.Collect(t0); err != nil {
		t.Fatal(err)
	}
	if _, err := goW.WriteString("go\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-burnt:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the grandchild did not finish its burn within 30s")
	}
	got, err := pt.Collect(t0.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if got[MetricCPU] <= 0 || got[MetricCPU] > 100 {
		t.Errorf("cpu of a grandchild that burnt CPU = %v%%, want in (0, 100]", got[MetricCPU])
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
