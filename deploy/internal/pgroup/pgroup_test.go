package pgroup

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// TestZombieGroupIsGone is the reproduction of the localcloud orphan flake:
// a process group whose every member has exited but is not yet reaped still
// answers kill(-pgid, 0), so a check built on it waits on whoever reaps
// orphans (init), not on the processes. Running must call it gone.
func TestZombieGroupIsGone(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "exit 0")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	// Not reaped until the end: the zombie is the point.
	t.Cleanup(func() { _ = cmd.Wait() })
	waitExitedNotReaped(t, pgid, 10*time.Second)
	if ms, err := Members(pgid); err != nil || len(ms) != 1 || ms[0].State != "Z" {
		t.Fatalf("members %v (%v), want the one zombie", ms, err)
	}
	if err := syscall.Kill(-pgid, 0); err != nil {
		t.Fatalf("kill(-pgid, 0) on a zombie group = %v; the premise of this test is that it succeeds", err)
	}
	left, err := Running(pgid)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("Running(%d) = %v, want none: a zombie runs nothing", pgid, left)
	}
}

func TestKillRejectsNonGroups(t *testing.T) {
	for _, pgid := range []int{0, -1} {
		if err := Kill(pgid, time.Second); err == nil {
			t.Fatalf("Kill(%d) = nil; it must refuse", pgid)
		}
	}
}

// waitExitedNotReaped blocks until child pid has exited, leaving it a
// zombie: waitid with WNOWAIT reports the exit without reaping.
func waitExitedNotReaped(t *testing.T, pid int, within time.Duration) {
	t.Helper()
	const pPID, wExited, wNoWait = 1, 0x4, 0x1000000
	done := make(chan syscall.Errno, 1)
	go func() {
		var info [128]byte // siginfo_t
		for {
			_, _, e := syscall.Syscall6(syscall.SYS_WAITID, pPID, uintptr(pid), uintptr(unsafe.Pointer(&info[0])), wExited|wNoWait, 0, 0)
			if e != syscall.EINTR {
				done <- e
				return
			}
		}
	}()
	select {
	case e := <-done:
		if e != 0 {
			t.Fatalf("waitid(%d): %v", pid, e)
		}
	case <-time.After(within):
		t.Fatalf("child %d did not exit within %s", pid, within)
	}
}
