package sandbox

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/prometheus/procfs"
)

// markerVar is set in every process the sandbox starts (and so inherited by
// every instance process), so survivors can be told apart from other users'
// processes running the same binaries.
const markerVar = "SHOAL_SANDBOX"

// Leftover is a process that outlived the sandbox.
type Leftover struct {
	PID  int
	Exe  string
	Args string
}

// Leftovers lists running processes that this sandbox started (directly or
// through the local cloud) and whose executable lies under the bin
// directory. After Close it should be empty.
func (s *Sandbox) Leftovers() ([]Leftover, error) {
	return leftovers(s.opts.BinDir, markerVar+"="+s.Dir)
}

// Processes lists the running processes this sandbox started, directly or
// through the local cloud (instances), as Leftovers finds them; while the
// sandbox runs that is all of them (the soak samples them).
func (s *Sandbox) Processes() ([]Leftover, error) { return s.Leftovers() }

// LeftoversOf is Leftovers for a sandbox another process ran, known by its
// bin and working directories (shoal-demo --keep prints the latter).
func LeftoversOf(binDir, dir string) ([]Leftover, error) {
	bin, err := filepath.Abs(binDir)
	if err != nil {
		return nil, err
	}
	return leftovers(bin, markerVar+"="+dir)
}

// leftovers lists the live processes with marker in their environment whose
// executable is under binDir ("": any executable).
func leftovers(binDir, marker string) ([]Leftover, error) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return nil, fmt.Errorf("leftovers: %w", err)
	}
	all, err := fs.AllProcs()
	if err != nil {
		return nil, fmt.Errorf("leftovers: %w", err)
	}
	prefix := ""
	if binDir != "" {
		prefix = filepath.Clean(binDir) + string(filepath.Separator)
	}
	var out []Leftover
	for _, p := range all {
		exe, err := p.Executable()
		if err != nil || !strings.HasPrefix(exe, prefix) {
			continue // gone, not ours to read, or another program
		}
		env, err := p.Environ()
		if err != nil || !containsLine(env, marker) {
			continue
		}
		st, err := p.Stat()
		if err == nil && st.State == "Z" {
			continue // exited; only its parent's wait is missing
		}
		args, _ := p.CmdLine()
		out = append(out, Leftover{PID: p.PID, Exe: exe, Args: strings.Join(args, " ")})
	}
	return out, nil
}

func containsLine(env []string, kv string) bool {
	for _, e := range env {
		if e == kv {
			return true
		}
	}
	return false
}

// String lists the leftovers one a line.
func (l Leftover) String() string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "pid %d %s", l.PID, l.Args)
	return b.String()
}
