package nemesis

import (
	"fmt"
	"net"
	"os"
	"strings"
	"sync"

	"github.com/shoal-dev/shoal/coordinator/internal/failpoint"
)

// The variables the hooks read, in a failpoints build only.
const (
	// DialMapEnv is real=proxy,...: a node-to-node dial whose target is
	// real goes to proxy instead.
	DialMapEnv = "SHOAL_DIAL_MAP"
	// RedirectMapEnv is real=proxy,...: a leader address this node hands
	// to clients is rewritten from real to proxy.
	RedirectMapEnv = "SHOAL_REDIRECT_MAP"
	// DiskFaultEnv names the control file of the raft-wal disk fault.
	DiskFaultEnv = "SHOAL_DISK_FAULT_FILE"
)

// maxMapEntries bounds a map read from the environment.
const maxMapEntries = 1024

// enabled is failpoint's build tag; tests switch it.
var enabled = failpoint.Enabled()

// settings is what the environment armed.
type settings struct {
	dial, redirect map[string]string
	diskFile       string
}

var (
	once   sync.Once
	loaded settings
	errEnv error
	getenv = os.Getenv
)

// load reads the environment once; in a build without failpoints it reads
// nothing and arms nothing.
func load() (settings, error) {
	if !enabled {
		return settings{}, nil
	}
	once.Do(func() {
		var s settings
		if s.dial, errEnv = ParseAddrMap(DialMapEnv, getenv(DialMapEnv)); errEnv != nil {
			return
		}
		if s.redirect, errEnv = ParseAddrMap(RedirectMapEnv, getenv(RedirectMapEnv)); errEnv != nil {
			return
		}
		s.diskFile = getenv(DiskFaultEnv)
		loaded = s
	})
	return loaded, errEnv
}

// Check reads the environment and reports a malformed variable, so a node
// refuses to start rather than run half-armed. It is nil in a build without
// failpoints.
func Check() error {
	_, err := load()
	return err
}

// armed returns the settings, or none when the environment was malformed
// (Check, called at start, has already refused to run then).
func armed() settings {
	s, err := load()
	if err != nil {
		return settings{}
	}
	return s
}

// ParseAddrMap reads real=proxy,real=proxy: each side a host:port, each
// real address at most once. name is the variable, for error messages.
func ParseAddrMap(name, v string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		from, to, ok := strings.Cut(part, "=")
		if !ok {
			return nil, fmt.Errorf("%s: %q: want real=proxy", name, part)
		}
		for _, a := range []string{from, to} {
			if _, _, err := net.SplitHostPort(a); err != nil {
				return nil, fmt.Errorf("%s: %q: %q is not a host:port: %w", name, part, a, err)
			}
		}
		if _, dup := out[from]; dup {
			return nil, fmt.Errorf("%s: %s is mapped twice", name, from)
		}
		if len(out) == maxMapEntries {
			return nil, fmt.Errorf("%s: more than %d entries", name, maxMapEntries)
		}
		out[from] = to
	}
	return out, nil
}

// DialAddr is where a node-to-node dial to addr goes: its proxy when the
// dial map names it, else addr itself.
func DialAddr(addr string) string {
	if p, ok := armed().dial[addr]; ok {
		return p
	}
	return addr
}

// RedirectAddr is the leader address to hand clients in place of addr.
func RedirectAddr(addr string) string {
	if p, ok := armed().redirect[addr]; ok {
		return p
	}
	return addr
}

// Summary names the armed hooks for the node's start-up warning; "" when
// none is (always, in a build without failpoints).
func Summary() string {
	s := armed()
	var parts []string
	if len(s.dial) > 0 {
		parts = append(parts, fmt.Sprintf("%s (%d links)", DialMapEnv, len(s.dial)))
	}
	if len(s.redirect) > 0 {
		parts = append(parts, fmt.Sprintf("%s (%d addresses)", RedirectMapEnv, len(s.redirect)))
	}
	if s.diskFile != "" {
		parts = append(parts, DiskFaultEnv+"="+s.diskFile)
	}
	return strings.Join(parts, ", ")
}
