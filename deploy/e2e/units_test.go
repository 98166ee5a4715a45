//go:build multiprocess

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/deploy/check"
	"github.com/shoal-dev/shoal/deploy/testkit"
)

// TestUnitsNameRealBinariesAndFlags runs every deploy/systemd unit's
// ExecStart binary from $SHOAL_BIN with the unit's own arguments (environment
// references filled from the config files deploy/ ships) plus --help: cobra
// parses every flag before printing help, so an unknown or mistyped flag
// fails here instead of on an instance at boot.
func TestUnitsNameRealBinariesAndFlags(t *testing.T) {
	binDir := testkit.BinDir(t)
	deployDir := filepath.Join("..")
	units, err := check.LoadUnits(filepath.Join(deployDir, "systemd"))
	if err != nil {
		t.Fatal(err)
	}
	if len(units) == 0 {
		t.Fatal("no units in deploy/systemd")
	}
	for _, u := range units {
		if typ, _ := u.Value("Service", "Type"); typ == "oneshot" {
			continue // a timer's helper script, not a Shoal binary: deploy/check checks it
		}
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

			help, err := testkit.Run(15*time.Second, bin, append(check.Subcommands(args), "--help"))
			if err != nil {
				t.Fatalf("%s --help: %v\n%s", bin, err, help)
			}
			for _, f := range flags {
				if !strings.Contains(help, "--"+f+" ") && !strings.Contains(help, "--"+f+"\n") {
					t.Errorf("%s does not list --%s in its help", filepath.Base(bin), f)
				}
			}
			out, err := testkit.Run(15*time.Second, bin, append(args, "--help"))
			if err != nil {
				t.Errorf("%s rejects the unit's command line %q: %v\n%s", filepath.Base(bin), args, err, out)
			}
		})
	}
}
