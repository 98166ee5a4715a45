package testkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/deploy/internal/loopback"
	"github.com/shoal-dev/shoal/deploy/internal/pgroup"
)

// BinEnv names the directory holding `make build` output.
const BinEnv = "SHOAL_BIN"

// BinDir returns $SHOAL_BIN as an absolute path, or skips the test when it
// is unset.
func BinDir(t testing.TB) string {
	t.Helper()
	dir, err := lookBinDir()
	if errors.Is(err, ErrNoBinDir) {
		t.Skip(BinEnv + " is not set: run `make test-e2e` (it builds bin/ and sets it)")
	}
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// lookBinDir resolves a relative $SHOAL_BIN (SHOAL_BIN=bin) against the
// module root, where the Makefile runs: tests run in their package folder.
func lookBinDir() (string, error) {
	dir := os.Getenv(BinEnv)
	if dir == "" {
		return "", ErrNoBinDir
	}
	if filepath.IsAbs(dir) {
		return dir, nil
	}
	root, err := moduleRoot()
	if err != nil {
		return "", fmt.Errorf("%s=%q is relative: %w", BinEnv, dir, err)
	}
	return filepath.Join(root, dir), nil
}

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the test's folder")
		}
		dir = parent
	}
}

// Binary returns the path of the binary name in $SHOAL_BIN; it skips when
// $SHOAL_BIN is unset and fails when the binary is missing there (a stale or
// partial build must not pass as a skip).
func Binary(t testing.TB, name string) string {
	t.Helper()
	p, err := LookBinary(name)
	if errors.Is(err, ErrNoBinDir) {
		t.Skip(BinEnv + " is not set: run `make test-e2e` (it builds bin/ and sets it)")
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// ErrNoBinDir is returned by LookBinary when $SHOAL_BIN is unset.
var ErrNoBinDir = errors.New(BinEnv + " is not set")

// LookBinary is Binary for callers without a *testing.T (TestMain).
func LookBinary(name string) (string, error) {
	dir, err := lookBinDir()
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s binary (run `make build`): %w", name, err)
	}
	return p, nil
}

// FreeAddr returns a loopback address whose port was free a moment ago,
// below the kernel's ephemeral range (loopback.Addr says why).
func FreeAddr(t testing.TB) string {
	t.Helper()
	addr, err := loopback.Addr()
	if err != nil {
		t.Fatalf("free loopback port: %v", err)
	}
	return addr
}

// Eventually calls cond until it returns nil, failing the test with cond's
// last error once within has passed.
func Eventually(t testing.TB, within time.Duration, cond func() error) {
	t.Helper()
	if err := Poll(within, cond); err != nil {
		t.Fatal(err)
	}
}

// Poll calls cond every 50ms until it returns nil or within has passed, and
// then returns cond's last error.
func Poll(within time.Duration, cond func() error) error {
	deadline := time.Now().Add(within)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not met within %s: %w", within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// WaitTCP waits until addr accepts a TCP connection.
func WaitTCP(t testing.TB, addr string, within time.Duration) {
	t.Helper()
	Eventually(t, within, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// WaitHTTP waits until GET url answers 200.
func WaitHTTP(t testing.TB, url string, within time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	Eventually(t, within, func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", url, resp.Status)
		}
		return nil
	})
}

// Member is one process of a process group.
type Member = pgroup.Member

// Running returns the members of process group pgid that have not exited;
// zombies are left out (see the package comment).
func Running(pgid int) ([]Member, error) { return pgroup.Running(pgid) }

// ErrLeftBehind says a process group still had running members.
var ErrLeftBehind = pgroup.ErrLeftBehind

// KillGroup SIGKILLs process group pgid and waits (bounded) until none of
// its members runs.
func KillGroup(pgid int, within time.Duration) error { return pgroup.Kill(pgid, within) }

// Options are the optional parts of Start.
type Options struct {
	// Name names the log file and the messages; default the binary's base name.
	Name string
	// Env is added to the test's environment.
	Env []string
	// Dir is the working directory; default the test's.
	Dir string
	// Stdout also receives stdout (the log file always does).
	Stdout io.Writer
	// Stderr also receives stderr (the log file always does).
	Stderr io.Writer
	// LogDir holds <Name>.log; default a t.TempDir.
	LogDir string
	// StopGrace is how long the cleanup waits after SIGTERM before SIGKILL;
	// 0 means SIGKILL straight away.
	StopGrace time.Duration
}

// Proc is one process started by Start, leader of its own process group.
type Proc struct {
	Name string
	Cmd  *exec.Cmd
	// Log is the file holding the process's stdout and stderr.
	Log string

	logf     *os.File
	done     chan struct{}
	err      error // set before done closes
	groupErr error // set before done closes: members outlived the leader
	once     sync.Once
	stop     error
}

// Start runs bin with args in its own process group. Its output goes to
// opts.LogDir/<name>.log (logged on failure), and a cleanup stops it and
// fails the test if any member of its group is still running afterwards.
// Should the test binary itself die, the kernel kills the process
// (Pdeathsig).
func Start(t testing.TB, bin string, args []string, opts Options) *Proc {
	t.Helper()
	p, err := startProc(bin, args, opts, t.TempDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(opts.StopGrace); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("%s log: %s\n%s", p.Name, p.Log, tail(p.Log, 8<<10))
		}
	})
	return p
}

// startProc is Start without the cleanup; tempDir supplies the log
// directory when opts.LogDir is empty.
func startProc(bin string, args []string, opts Options, tempDir func() string) (*Proc, error) {
	name := opts.Name
	if name == "" {
		name = filepath.Base(bin)
	}
	logDir := opts.LogDir
	if logDir == "" {
		logDir = tempDir()
	}
	logPath := filepath.Join(logDir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), opts.Env...)
	cmd.Dir = opts.Dir
	cmd.Stdout, cmd.Stderr = io.Writer(logf), io.Writer(logf)
	if opts.Stdout != nil {
		cmd.Stdout = io.MultiWriter(logf, opts.Stdout)
	}
	if opts.Stderr != nil {
		cmd.Stderr = io.MultiWriter(logf, opts.Stderr)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := startLocked(cmd); err != nil {
		logf.Close()
		return nil, fmt.Errorf("%s: start %s: %w", name, bin, err)
	}
	p := &Proc{Name: name, Cmd: cmd, Log: logPath, logf: logf, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		// Whatever the leader left in its group goes with it, now: once the
		// group is empty its id may be reused by another process, so nothing
		// signals it after done closes.
		p.groupErr = pgroup.Kill(cmd.Process.Pid, 5*time.Second)
		p.logf.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id, which is also its process group id.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Done is closed once the process has exited and been reaped.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Err is the process's exit error; valid once Done is closed.
func (p *Proc) Err() error {
	<-p.done
	return p.err
}

// Wait waits for the process to exit, at most within.
func (p *Proc) Wait(within time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(within):
		return fmt.Errorf("%s (pid %d) still running after %s", p.Name, p.Pid(), within)
	}
}

// Signal sends sig to the process alone.
func (p *Proc) Signal(sig syscall.Signal) error {
	if p.Exited() {
		return nil
	}
	if err := p.Cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("%s: signal %v: %w", p.Name, sig, err)
	}
	return nil
}

// SignalGroup sends sig to the whole process group; once the process has
// exited it does nothing (the group is gone and its id may be reused).
func (p *Proc) SignalGroup(sig syscall.Signal) error {
	if p.Exited() {
		return nil
	}
	if err := syscall.Kill(-p.Pid(), sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("%s: signal group %v: %w", p.Name, sig, err)
	}
	return nil
}

// Stop sends SIGTERM to the group, SIGKILL after grace (at once when grace
// is 0), and waits (bounded) until the process has exited and no member of
// its group runs. Only the first call acts; later calls return its result.
func (p *Proc) Stop(grace time.Duration) error {
	p.once.Do(func() {
		if grace > 0 && !p.Exited() {
			_ = p.SignalGroup(syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(grace):
			}
		}
		_ = p.SignalGroup(syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			p.stop = fmt.Errorf("%s (pid %d) not gone 20s after SIGKILL: %w", p.Name, p.Pid(), ErrLeftBehind)
			return
		}
		if p.groupErr != nil {
			p.stop = fmt.Errorf("%s: %w", p.Name, p.groupErr)
		}
	})
	return p.stop
}

// Output returns what the process has written so far.
func (p *Proc) Output() string {
	b, _ := os.ReadFile(p.Log)
	return string(b)
}

func tail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > n {
		_, _ = f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// forkThread starts every child from one OS thread that never exits:
// Pdeathsig fires when the thread that forked a child exits, not the
// process, and the runtime may retire the thread of an ordinary goroutine.
var forkThread = struct {
	once sync.Once
	reqs chan forkReq
}{reqs: make(chan forkReq)}

type forkReq struct {
	cmd  *exec.Cmd
	done chan error
}

func startLocked(cmd *exec.Cmd) error {
	forkThread.once.Do(func() {
		go func() {
			runtime.LockOSThread() // never unlocked: the thread must outlive every child
			for r := range forkThread.reqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	forkThread.reqs <- forkReq{cmd, done}
	return <-done
}

// Run runs bin with args to completion in its own process group and returns
// its combined output; past within it kills the group and says so.
func Run(within time.Duration, bin string, args []string, env ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.CombinedOutput()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return string(out), fmt.Errorf("%s did not exit within %s", filepath.Base(bin), within)
	}
	return string(out), err
}

// Buffer is a bytes.Buffer safe for one writer (a process's output) and
// concurrent readers (a test polling what it printed).
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *Buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
