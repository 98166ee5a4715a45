package pgroup

import (
	"os/exec"
	"syscall"
	"testing"
	"time"
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
	deadline := time.Now().Add(10 * time.Second)
	for {
		ms, err := Members(pgid)
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == 1 && ms[0].State == "Z" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no zombie within 10s: %v", ms)
		}
		time.Sleep(10 * time.Millisecond)
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
