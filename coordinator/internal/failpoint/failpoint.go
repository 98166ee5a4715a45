package failpoint

import (
	"fmt"
	"os"
	"strings"
	"sync"
)

// Env is the variable that arms failpoints: a comma-separated list of
// name=action, where action is exit (exit status 3 at once, no cleanup, like
// a crash) or panic.
const Env = "SHOAL_FAILPOINT"

// ExitCode is the status a failpoint's exit action leaves with.
const ExitCode = 3

// enabled is set by the failpoints build tag.
var enabled bool

// Enabled reports whether this is a failpoints build. Other fault hooks
// (package nemesis) read their environment only when it is.
func Enabled() bool { return enabled }

var (
	once   sync.Once
	armed  map[string]string
	exitFn = func() { os.Exit(ExitCode) }
)

// Parse reads a SHOAL_FAILPOINT value.
func Parse(v string) (map[string]string, error) {
	out := map[string]string{}
	for _, part := range strings.Split(v, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, action, ok := strings.Cut(part, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("%s: %q: want name=action", Env, part)
		}
		switch action {
		case "exit", "panic":
		default:
			return nil, fmt.Errorf("%s: %s: unknown action %q (want exit or panic)", Env, name, action)
		}
		out[name] = action
	}
	return out, nil
}

// Inject triggers the failpoint called name if it is armed.
func Inject(name string) {
	if !enabled {
		return
	}
	once.Do(func() {
		m, err := Parse(os.Getenv(Env))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		armed = m
	})
	switch armed[name] {
	case "exit":
		fmt.Fprintf(os.Stderr, "failpoint %s: exit\n", name)
		exitFn()
	case "panic":
		panic("failpoint " + name)
	}
}
