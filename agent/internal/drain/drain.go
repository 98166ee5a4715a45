package drain

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"syscall"
	"time"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// maxOutput bounds the output carried back to the coordinator.
const maxOutput = 4 << 10

// Hook runs Command with /bin/sh -c. An empty Command succeeds at once: an
// instance with nothing to drain is drained.
type Hook struct {
	Command string
	// DefaultTimeout bounds a hook whose command carries no deadline.
	DefaultTimeout time.Duration
	// WaitDelay is how long to wait for output after the group is killed.
	WaitDelay time.Duration
}

// Run runs the hook within ctx (which carries the command's deadline).
func (h Hook) Run(ctx context.Context, cmd *shoalv1.AgentCommand) *shoalv1.CommandResult {
	res := &shoalv1.CommandResult{Id: cmd.GetId(), Kind: cmd.GetKind()}
	if h.Command == "" {
		res.Ok, res.Output = true, "no --on-drain hook configured"
		return res
	}
	if _, has := ctx.Deadline(); !has && h.DefaultTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, h.DefaultTimeout)
		defer cancel()
	}
	c := exec.CommandContext(ctx, "/bin/sh", "-c", h.Command)
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Kill the whole group, not just sh, so children cannot linger.
	c.Cancel = func() error { return syscall.Kill(-c.Process.Pid, syscall.SIGKILL) }
	c.WaitDelay = h.WaitDelay
	if c.WaitDelay == 0 {
		c.WaitDelay = time.Second
	}
	out := &capped{max: maxOutput}
	c.Stdout, c.Stderr = out, out
	err := c.Run()
	res.Output = out.String()
	res.ExitCode = int32(c.ProcessState.ExitCode())
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		res.Ok = true
	case ctx.Err() != nil:
		res.Error = fmt.Sprintf("on-drain hook killed: %v", ctx.Err())
	case errors.As(err, &exitErr):
		res.Error = fmt.Sprintf("on-drain hook exited with status %d", exitErr.ExitCode())
	default:
		res.Error = fmt.Sprintf("on-drain hook: %v", err)
	}
	return res
}

// capped keeps the first max bytes written to it.
type capped struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - c.buf.Len(); room > 0 {
		c.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.String()
}
