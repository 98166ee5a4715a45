package pgroup

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Member is one process of a process group.
type Member struct {
	PID   int
	PPID  int
	State string // the state letter of /proc/<pid>/stat: R, S, D, T, Z, ...
	Comm  string
}

func (m Member) String() string {
	return fmt.Sprintf("%d(%s,%s,ppid %d)", m.PID, m.Comm, m.State, m.PPID)
}

// Running returns the members of process group pgid that have not exited.
// Zombies are left out: kill(-pgid, 0) succeeds on a group of zombies
// waiting for init to reap them, which says nothing about whether anything
// still runs.
func Running(pgid int) ([]Member, error) {
	all, err := Members(pgid)
	if err != nil {
		return nil, err
	}
	var out []Member
	for _, m := range all {
		if m.State != "Z" && m.State != "X" && m.State != "x" {
			out = append(out, m)
		}
	}
	return out, nil
}

// Members returns every process of process group pgid, zombies included.
func Members(pgid int) ([]Member, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var out []Member
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		m, pg, ok := readStat(pid)
		if ok && pg == pgid {
			out = append(out, m)
		}
	}
	return out, nil
}

// readStat parses /proc/<pid>/stat; ok is false when the process is gone.
func readStat(pid int) (m Member, pgid int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Member{}, 0, false
	}
	s := string(b)
	// comm may hold spaces and parentheses; it ends at the last ')'.
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open || end+2 > len(s) {
		return Member{}, 0, false
	}
	f := strings.Fields(s[end+2:])
	if len(f) < 3 {
		return Member{}, 0, false
	}
	ppid, _ := strconv.Atoi(f[1])
	pgid, err = strconv.Atoi(f[2])
	if err != nil {
		return Member{}, 0, false
	}
	return Member{PID: pid, PPID: ppid, State: f[0], Comm: s[open+1 : end]}, pgid, true
}

// WaitGone waits until no member of process group pgid runs; past within it
// returns an error listing who is left.
func WaitGone(pgid int, within time.Duration) error {
	return waitGone(pgid, within, false)
}

// ErrLeftBehind says a process group still had running members.
var ErrLeftBehind = errors.New("process left behind")

// waitGone polls until no member of pgid runs; with kill, it SIGKILLs
// the group on every round that found a running member.
func waitGone(pgid int, within time.Duration, kill bool) error {
	deadline := time.Now().Add(within)
	for {
		left, err := Running(pgid)
		if err != nil {
			return err
		}
		if len(left) == 0 {
			return nil
		}
		if kill {
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process group %d after %s: %v: %w", pgid, within, left, ErrLeftBehind)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Kill SIGKILLs process group pgid and waits (bounded) until none of its
// members runs. It signals only while it sees a running member: the kernel
// does not hand out a group id still in use, but once the group is empty
// the id may become someone else's.
func Kill(pgid int, within time.Duration) error {
	if pgid <= 0 {
		// kill(0) or kill(-1) would reach the caller's own group or everyone.
		return fmt.Errorf("process group %d: not a group id", pgid)
	}
	return waitGone(pgid, within, true)
}
