package testkit

import (
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

func TestRunningSeesLiveMembers(t *testing.T) {
	p := Start(t, "/bin/sh", []string{"-c", "sleep 600 & sleep 600 & wait"}, Options{Name: "sleeper"})
	Eventually(t, 10*time.Second, func() error {
		left, err := Running(p.Pid())
		if err != nil {
			return err
		}
		if len(left) != 3 {
			return errors.New("want the shell and two sleeps running")
		}
		return nil
	})
}

// TestStopLeavesNoSurvivor: a group that ignores SIGTERM and whose leader
// has children is gone after Stop, and Stop says so.
func TestStopLeavesNoSurvivor(t *testing.T) {
	p := Start(t, "/bin/sh", []string{"-c", "trap '' TERM; echo started; sleep 600 & sleep 600 & wait"}, Options{})
	Eventually(t, 10*time.Second, func() error {
		if !strings.Contains(p.Output(), "started") {
			return errors.New("no output yet")
		}
		return nil
	})
	start := time.Now()
	if err := p.Stop(200 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("Stop took %s; SIGTERM is ignored, so it must wait the grace", d)
	}
	left, err := Running(p.Pid())
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("left running after Stop: %v", left)
	}
	if !p.Exited() {
		t.Fatal("Exited() = false after Stop")
	}
}

func TestWaitTCP(t *testing.T) {
	addr := FreeAddr(t)
	if err := Poll(100*time.Millisecond, func() error {
		c, err := net.DialTimeout("tcp", addr, 50*time.Millisecond)
		if err == nil {
			c.Close()
		}
		return err
	}); err == nil {
		t.Fatalf("%s accepted before anyone listened", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	WaitTCP(t, addr, 5*time.Second)
}

func TestKillGroupRejectsNonGroups(t *testing.T) {
	for _, pgid := range []int{0, -1} {
		if err := KillGroup(pgid, time.Second); err == nil {
			t.Fatalf("KillGroup(%d) = nil; it must refuse", pgid)
		}
	}
}
