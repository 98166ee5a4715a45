package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Status is `shoal-coordinator status -o json`.
type Status struct {
	LeaderID string `json:"leader_id"`
	NodeID   string `json:"node_id"`
	Term     uint64 `json:"term"`
	// Insecure is true when the answering node runs with --insecure.
	Insecure bool `json:"insecure"`
	Nodes    []struct {
		ID      string `json:"id"`
		Role    string `json:"role"`
		RPCAddr string `json:"rpc_addr"`
	} `json:"nodes"`
}

// CLI runs `shoal-coordinator --address <a live node> -o json args...` and
// returns its standard output; a failure's error carries its standard error.
func (s *Sandbox) CLI(ctx context.Context, args ...string) ([]byte, error) {
	addr := ""
	for _, n := range s.Nodes() {
		if n.Alive() {
			addr = n.RPCAddr
			break
		}
	}
	if addr == "" {
		return nil, fmt.Errorf("cli %s: no live coordinator node", strings.Join(args, " "))
	}
	return s.CLIAt(ctx, addr, args...)
}

// CLIAt is CLI against the node at addr.
func (s *Sandbox) CLIAt(ctx context.Context, addr string, args ...string) ([]byte, error) {
	full := append([]string{"--address", addr, "-o", "json"}, args...)
	cmd := exec.CommandContext(ctx, filepath.Join(s.opts.BinDir, "shoal-coordinator"), full...)
	cmd.Env = s.CLIEnv()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("shoal-coordinator %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}

// CLIJSON runs CLI and decodes its JSON output into out.
func (s *Sandbox) CLIJSON(ctx context.Context, out any, args ...string) error {
	b, err := s.CLI(ctx, args...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("shoal-coordinator %s: decode %q: %w", strings.Join(args, " "), b, err)
	}
	return nil
}

// Status asks a live node for the cluster status.
func (s *Sandbox) Status(ctx context.Context) (Status, error) {
	var st Status
	err := s.CLIJSON(ctx, &st, "status")
	return st, err
}

// Leader returns the leader node, waiting (up to the Ready bound) until a
// live node reports a live leader.
func (s *Sandbox) Leader(ctx context.Context) (*Node, error) {
	var leader *Node
	err := s.poll(ctx, "a live leader", func(ctx context.Context) error {
		for _, n := range s.Nodes() {
			if !n.Alive() {
				continue
			}
			var st Status
			b, err := s.CLIAt(ctx, n.RPCAddr, "status", "--stale")
			if err != nil {
				continue
			}
			if err := json.Unmarshal(b, &st); err != nil || st.LeaderID == "" {
				continue
			}
			for _, m := range s.Nodes() {
				if m.ID == st.LeaderID && m.Alive() {
					leader = m
					return nil
				}
			}
		}
		return ErrNoLeader
	})
	return leader, err
}

// KillNode kill -9s a node's process group and waits for it to be gone.
func (s *Sandbox) KillNode(n *Node) error {
	if n.proc == nil {
		return fmt.Errorf("node %s: never started", n.ID)
	}
	if err := n.proc.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	select {
	case <-n.proc.Done():
	case <-time.After(15 * time.Second):
		return fmt.Errorf("node %s: %w", n.ID, ErrLeftBehind)
	}
	return n.proc.groupErr
}

// SignalNode sends sig to a node's process group: SIGSTOP freezes it (a
// long GC or VM pause), SIGCONT wakes it.
func (s *Sandbox) SignalNode(n *Node, sig syscall.Signal) error {
	s.mu.Lock()
	p := n.proc
	s.mu.Unlock()
	if p == nil {
		return fmt.Errorf("node %s: never started", n.ID)
	}
	return p.Signal(sig)
}

// RestartNode starts a stopped node again with its original flags (a node
// with data rejoins on its own) and waits for its /healthz.
func (s *Sandbox) RestartNode(ctx context.Context, n *Node) error {
	if n.Alive() {
		return fmt.Errorf("node %s: still running", n.ID)
	}
	if s.closed.Load() {
		return ErrClosed
	}
	return s.startNode(ctx, n)
}

// WaitFleetDesired polls `fleet get` until the fleet's desired capacity
// satisfies ok, and returns it.
func (s *Sandbox) WaitFleetDesired(ctx context.Context, fleet string, within time.Duration, ok func(int) bool) (int, error) {
	desired := -1
	err := Poll(ctx, within, "fleet "+fleet+" desired capacity", func(ctx context.Context) error {
		var f struct {
			Desired int `json:"desired"`
		}
		if err := s.CLIJSON(ctx, &f, "fleet", "get", fleet); err != nil {
			return err
		}
		desired = f.Desired
		if !ok(f.Desired) {
			return errors.New("desired is " + fmt.Sprint(f.Desired))
		}
		return nil
	})
	return desired, err
}

// FleetInstance is one row of `instances FLEET -o json`.
type FleetInstance struct {
	ID        string             `json:"id"`
	State     string             `json:"state"`
	PrivateIP string             `json:"private_ip"`
	Ready     bool               `json:"ready"`
	Metrics   map[string]float64 `json:"metrics"`
}

// WaitInService polls `instances FLEET` until exactly n instances are
// in_service and ready, and returns them.
func (s *Sandbox) WaitInService(ctx context.Context, fleet string, n int, within time.Duration) ([]FleetInstance, error) {
	var ready []FleetInstance
	err := Poll(ctx, within, fmt.Sprintf("%d in_service instances in %s", n, fleet), func(ctx context.Context) error {
		var all []FleetInstance
		if err := s.CLIJSON(ctx, &all, "instances", fleet); err != nil {
			return err
		}
		ready = ready[:0]
		for _, in := range all {
			if in.State == "in_service" && in.Ready {
				ready = append(ready, in)
			}
		}
		if len(ready) != n {
			return fmt.Errorf("%d in_service of %d listed", len(ready), len(all))
		}
		return nil
	})
	return ready, err
}
