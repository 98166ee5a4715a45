//go:build multiprocess

package e2e

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/deploy/check"
)

// TestUnitsNameRealBinariesAndFlags runs every deploy/systemd unit's
// ExecStart binary from $SHOAL_BIN with the unit's own arguments (environment
// references filled from the config files deploy/ ships) plus --help: cobra
// parses every flag before printing help, so an unknown or mistyped flag
// fails here instead of on an instance at boot.
func TestUnitsNameRealBinariesAndFlags(t *testing.T) {
	binDir := os.Getenv("SHOAL_BIN")
	if binDir == "" {
		t.Skip("SHOAL_BIN is unset: run `make test-e2e` (or SHOAL_BIN=bin go test -tags multiprocess ./deploy/e2e) after `make build`")
	}
	deployDir := filepath.Join("..")
	units, err := check.LoadUnits(filepath.Join(deployDir, "systemd"))
	if err != nil {
		t.Fatal(err)
	}
	if len(units) == 0 {
		t.Fatal("no units in deploy/systemd")
	}
	for _, u := range units {
		t.Run(u.Name, func(t *testing.T) {
			ex, err := check.ParseExec(u.Values("Service", "ExecStart")[0])
			if err != nil {
				t.Fatal(err)
			}
			bin := filepath.Join(binDir, filepath.Base(ex.Binary))
			if _, err := os.Stat(bin); err != nil {
				t.Skipf("%s is not built yet (%v); `make build` builds every cmd/ that exists", bin, err)
			}
			env, err := check.UnitEnv(u, deployDir)
			if err != nil {
				t.Fatal(err)
			}
			args := check.Expand(ex.Words, env)
			flags := check.FlagNames(args)
			if len(flags) == 0 {
				t.Fatalf("ExecStart %q passes no flags; nothing to check", ex.Words)
			}

			help, err := run(t, bin, append(check.Subcommands(args), "--help")...)
			if err != nil {
				t.Fatalf("%s --help: %v\n%s", bin, err, help)
			}
			for _, f := range flags {
				if !strings.Contains(help, "--"+f+" ") && !strings.Contains(help, "--"+f+"\n") {
					t.Errorf("%s does not list --%s in its help", filepath.Base(bin), f)
				}
			}
			out, err := run(t, bin, append(args, "--help")...)
			if err != nil {
				t.Errorf("%s rejects the unit's command line %q: %v\n%s", filepath.Base(bin), args, err, out)
			}
		})
	}
}

// run runs bin in its own process group, bounded in time, and returns its
// combined output.
func run(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.CombinedOutput()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return string(out), errors.New("did not exit within 15s")
	}
	return string(out), err
}
