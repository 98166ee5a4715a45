package sandbox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/shoal-dev/shoal/deploy/internal/pgroup"
)

// Process is one child process the sandbox started, in its own process group.
type Process struct {
	Name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done closes
	// groupErr says whether the group outlived its leader; set before done
	// closes.
	groupErr error
	log      *os.File
}

// Pid is the process id, which is also its process group id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed once the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits for the process to exit, or for ctx.
func (p *Process) Wait(ctx context.Context) error {
	select {
	case <-p.done:
		return p.err
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", p.Name, ctx.Err())
	}
}

// Signal sends sig to the whole process group; once the process has exited
// it does nothing (the group id may belong to someone else by then).
func (p *Process) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return nil
	}
	if err := syscall.Kill(-p.Pid(), sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("%s: signal %v: %w", p.Name, sig, err)
	}
	return nil
}

// Stop sends SIGTERM to the group, SIGKILL after grace, and waits (bounded)
// for the process and every member of its group to be gone.
func (p *Process) Stop(grace time.Duration) error {
	if grace > 0 && !p.Exited() {
		_ = p.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(grace):
		}
	}
	_ = p.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		return fmt.Errorf("%s (pid %d): %w", p.Name, p.Pid(), ErrLeftBehind)
	}
	if p.log != nil {
		p.log.Close()
	}
	if p.groupErr != nil {
		return fmt.Errorf("%s: %w", p.Name, p.groupErr)
	}
	return nil
}

// starter starts processes from one locked OS thread that lives as long as
// the sandbox: Pdeathsig fires when the thread that forked a child exits, so
// starting from arbitrary goroutines (whose threads the runtime may retire)
// could kill children early.
type starter struct {
	mu     sync.Mutex
	reqs   chan startReq
	closed bool
}

type startReq struct {
	cmd  *exec.Cmd
	done chan error
}

func newStarter() *starter {
	st := &starter{reqs: make(chan startReq)}
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the loop
		for r := range st.reqs {
			r.done <- r.cmd.Start()
		}
	}()
	return st
}

func (st *starter) start(cmd *exec.Cmd) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.closed {
		return ErrClosed
	}
	done := make(chan error, 1)
	st.reqs <- startReq{cmd, done}
	return <-done
}

// close ends the thread; call it only once every child is gone.
func (st *starter) close() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.closed {
		st.closed = true
		close(st.reqs)
	}
}

// procs tracks every process started, so Close can end them all.
type procs struct {
	mu   sync.Mutex
	list []*Process
}

func (ps *procs) add(p *Process) {
	ps.mu.Lock()
	ps.list = append(ps.list, p)
	ps.mu.Unlock()
}

func (ps *procs) all() []*Process {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return append([]*Process(nil), ps.list...)
}

// Spawn starts bin (a name in the bin directory, or a path) with args in its
// own process group, output to stdout if given and always to
// <dir>/logs/<name>.log. Close stops it.
func (s *Sandbox) Spawn(name, bin string, args []string, stdout io.Writer) (*Process, error) {
	return s.spawn(name, bin, args, stdout, nil)
}

// spawn is Spawn with extra environment variables for this process alone.
func (s *Sandbox) spawn(name, bin string, args []string, stdout io.Writer, extraEnv []string) (*Process, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	path := bin
	if !filepath.IsAbs(bin) {
		path = filepath.Join(s.opts.BinDir, bin)
	}
	logf, err := os.OpenFile(filepath.Join(s.Dir, "logs", name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: log: %w", name, err)
	}
	cmd := exec.Command(path, args...)
	cmd.Env = append(append([]string(nil), s.env...), extraEnv...)
	cmd.Dir = s.Dir
	// Pdeathsig: should this program die without Close (SIGKILL, a test
	// timeout), the kernel kills its children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = logf
	cmd.Stdout = logf
	if stdout != nil {
		cmd.Stdout = io.MultiWriter(logf, stdout)
	}
	if err := s.starter.start(cmd); err != nil {
		logf.Close()
		return nil, fmt.Errorf("%s: start %s: %w", name, path, err)
	}
	p := &Process{Name: name, cmd: cmd, done: make(chan struct{}), log: logf}
	go func() {
		p.err = cmd.Wait()
		// Whatever the leader left in its group goes with it, now: once the
		// group is empty its id may be reused by someone else's process, so
		// nothing may signal it after done closes.
		p.groupErr = pgroup.Kill(cmd.Process.Pid, 5*time.Second)
		close(p.done)
	}()
	s.procs.add(p)
	return p, nil
}

// exitedErr says, as a Final error, that p exited, with its status, its log's path and the
// log's last lines: the sandbox's directory is gone once the test ends,
// so the lines saying why must travel in the error.
func (s *Sandbox) exitedErr(p *Process) error {
	path := filepath.Join(s.Dir, "logs", p.Name+".log")
	return Final(fmt.Errorf("%s exited: %v (see %s); its log ends:\n%s", p.Name, p.err, path, logTail(path, 20, 4096)))
}

// logTail returns the last n lines of the file at path, at most limit bytes
// of it, or a line saying why it could not be read.
func logTail(path string, n, limit int) string {
	f, err := os.Open(path)
	if err != nil {
		return "(log unreadable: " + err.Error() + ")"
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "(log unreadable: " + err.Error() + ")"
	}
	off := max(0, st.Size()-int64(limit))
	b := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(b, off); err != nil && !errors.Is(err, io.EOF) {
		return "(log unreadable: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}
