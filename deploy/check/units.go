package check

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/coreos/go-systemd/v22/unit"
)

// ErrUnit marks a unit or environment file that cannot be used.
var ErrUnit = errors.New("bad systemd unit")

// Unit is one parsed unit file.
type Unit struct {
	Name    string // file name, e.g. shoal-lb.service
	Path    string
	Options []*unit.UnitOption
}

// Values returns every value of section.name, in file order.
func (u Unit) Values(section, name string) []string {
	var out []string
	for _, o := range u.Options {
		if o.Section == section && o.Name == name {
			out = append(out, o.Value)
		}
	}
	return out
}

// Value returns the last value of section.name (systemd's rule for
// single-valued settings) and whether it is set.
func (u Unit) Value(section, name string) (string, bool) {
	v := u.Values(section, name)
	if len(v) == 0 {
		return "", false
	}
	return v[len(v)-1], true
}

// LoadUnits parses every *.service file in dir.
func LoadUnits(dir string) ([]Unit, error) {
	paths, err := filepath.Glob(filepath.Join(dir, "*.service"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	var units []Unit
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		opts, err := unit.DeserializeOptions(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrUnit, p, err)
		}
		units = append(units, Unit{Name: filepath.Base(p), Path: p, Options: opts})
	}
	return units, nil
}

// Exec is an ExecStart command line split the way systemd splits it for the
// unquoted lines our units use.
type Exec struct {
	Binary string   // absolute path of the program
	Words  []string // every word after the binary, unexpanded
}

// ParseExec splits an ExecStart value. Prefixes such as "-" or "+" are
// dropped from the binary; quoting is refused because our units never need it
// and a naive split would misread it.
func ParseExec(line string) (Exec, error) {
	if strings.ContainsAny(line, `"'`) {
		return Exec{}, fmt.Errorf("%w: ExecStart %q uses quotes; keep unit command lines unquoted", ErrUnit, line)
	}
	// go-systemd keeps line continuations in the value; systemd reads each
	// as a space.
	words := strings.Fields(strings.ReplaceAll(line, "\\\n", " "))
	if len(words) == 0 {
		return Exec{}, fmt.Errorf("%w: empty ExecStart", ErrUnit)
	}
	bin := strings.TrimLeft(words[0], "-@+!:")
	if !filepath.IsAbs(bin) {
		return Exec{}, fmt.Errorf("%w: ExecStart binary %q must be an absolute path", ErrUnit, bin)
	}
	return Exec{Binary: bin, Words: words[1:]}, nil
}

var braced = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// Expand substitutes environment references as systemd does: a word that is
// exactly $VAR becomes the value split on white space (nothing when empty or
// unset); ${VAR} inside a word is replaced in place.
func Expand(words []string, env map[string]string) []string {
	var out []string
	for _, w := range words {
		if strings.HasPrefix(w, "$") && !strings.HasPrefix(w, "${") {
			out = append(out, strings.Fields(env[w[1:]])...)
			continue
		}
		out = append(out, braced.ReplaceAllStringFunc(w, func(m string) string { return env[m[2:len(m)-1]] }))
	}
	return out
}

// References lists the variables words refer to: braced ones are required
// (a missing one leaves an empty argument), bare $VAR words are optional.
func References(words []string) (required, optional []string) {
	for _, w := range words {
		if strings.HasPrefix(w, "$") && !strings.HasPrefix(w, "${") {
			optional = append(optional, w[1:])
			continue
		}
		for _, m := range braced.FindAllStringSubmatch(w, -1) {
			required = append(required, m[1])
		}
	}
	return required, optional
}

// Subcommands returns the words before the first flag (e.g. "serve").
func Subcommands(args []string) []string {
	var out []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			break
		}
		out = append(out, a)
	}
	return out
}

// FlagNames returns the long flag names in args, without dashes or values.
func FlagNames(args []string) []string {
	var out []string
	for _, a := range args {
		if !strings.HasPrefix(a, "--") || a == "--" {
			continue
		}
		name, _, _ := strings.Cut(a[2:], "=")
		out = append(out, name)
	}
	return out
}

// EnvFiles maps each EnvironmentFile a unit reads on an instance to the file
// in deploy/ that provides it: installed by Packer (*.default) or written by
// Terraform user data, which the *.example documents.
var EnvFiles = map[string]string{
	"/etc/default/shoal-agent":   "config/shoal-agent.default",
	"/etc/default/shoal-demoapp": "config/shoal-demoapp.default",
	"/etc/shoal/coordinator.env": "config/coordinator.env.example",
	"/etc/shoal/lb.env":          "config/lb.env.example",
}

// ReadEnvFile reads KEY=VALUE lines, skipping comments and blank lines and
// dropping one pair of surrounding double quotes, as systemd does for the
// simple files we ship.
func ReadEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%w: %s:%d: want KEY=VALUE, got %q", ErrUnit, path, n, line)
		}
		if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
			v = v[1 : len(v)-1]
		}
		env[k] = v
	}
	return env, sc.Err()
}

// UnitEnv returns the environment a unit's ExecStart sees: its Environment=
// settings and the deploy/ files behind its EnvironmentFile= settings.
// deployDir is the path of deploy/.
func UnitEnv(u Unit, deployDir string) (map[string]string, error) {
	env := map[string]string{}
	for _, v := range u.Values("Service", "Environment") {
		for _, kv := range strings.Fields(v) {
			if k, val, ok := strings.Cut(kv, "="); ok {
				env[k] = val
			}
		}
	}
	for _, v := range u.Values("Service", "EnvironmentFile") {
		installed := strings.TrimPrefix(v, "-")
		src, ok := EnvFiles[installed]
		if !ok {
			return nil, fmt.Errorf("%w: %s reads EnvironmentFile %s, which nothing in deploy/ provides (add it to check.EnvFiles)", ErrUnit, u.Name, installed)
		}
		fileEnv, err := ReadEnvFile(filepath.Join(deployDir, src))
		if err != nil {
			return nil, err
		}
		for k, val := range fileEnv {
			env[k] = val
		}
	}
	return env, nil
}
