package localcloud

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// wrapperScript is the instance's "init": it runs every workload script in
// the background and lives while any of them does. Its HUP trap is the other
// half of the parent-death signal: the kernel sends SIGHUP to this shell when
// the local cloud dies (even by SIGKILL), and the trap kills the whole
// process group, which a parent-death signal alone would not reach.
const wrapperScript = `trap 'kill -9 0' HUP
for s in "$@"; do "$LOCALCLOUD_SHELL" -c "$s" & done
wait
`

// idleScript keeps an instance without workload running, as an EC2 instance
// without UserData keeps running.
const idleScript = "exec sleep 2147483647"

// procSpec is what an instance runs.
type procSpec struct {
	Shell   string
	Scripts []string
	Env     []string
	// Output receives stdout and stderr; a file (not a pipe) so that Wait
	// never blocks on grandchildren that still hold the descriptor.
	Output *os.File
}

// proc is one instance's process group.
type proc struct {
	cmd  *exec.Cmd
	pid  int
	done chan struct{}
	err  error // valid after done
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// signalGroup signals the whole process group, so children of the
// workload scripts stop with it.
func (p *proc) signalGroup(sig syscall.Signal) error {
	if p.pid <= 0 {
		// kill(0) would signal the local cloud's own group.
		return nil
	}
	err := syscall.Kill(-p.pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}

// spawner starts processes from one OS thread locked for its whole life.
// Pdeathsig fires when the *thread* that forked the child exits, not the
// process; Go may retire idle threads, so forking from a goroutine that
// never unlocks keeps the signal tied to the local cloud's lifetime.
type spawner struct {
	reqs chan spawnReq
	once sync.Once
}

type spawnReq struct {
	spec  procSpec
	reply chan spawnResp
}

type spawnResp struct {
	p   *proc
	err error
}

var defaultSpawner = &spawner{reqs: make(chan spawnReq)}

func (s *spawner) start(spec procSpec) (*proc, error) {
	s.once.Do(func() {
		ready := make(chan struct{})
		go func() {
			runtime.LockOSThread()
			// Never unlocked: the thread must outlive every child.
			close(ready)
			for r := range s.reqs {
				p, err := startProc(r.spec)
				r.reply <- spawnResp{p, err}
			}
		}()
		<-ready
	})
	reply := make(chan spawnResp, 1)
	s.reqs <- spawnReq{spec, reply}
	r := <-reply
	return r.p, r.err
}

func startProc(spec procSpec) (*proc, error) {
	scripts := spec.Scripts
	if len(scripts) == 0 {
		scripts = []string{idleScript}
	}
	args := append([]string{"-c", wrapperScript, "localcloud-instance"}, scripts...)
	cmd := exec.Command(spec.Shell, args...)
	cmd.Env = append(append(os.Environ(), spec.Env...), "LOCALCLOUD_SHELL="+spec.Shell)
	if spec.Output != nil {
		cmd.Stdout, cmd.Stderr = spec.Output, spec.Output
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGHUP}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start instance process: %w", err)
	}
	p := &proc{cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}
