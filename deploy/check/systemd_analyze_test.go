package check

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestUnitsVerifyWithSystemd asks systemd itself (systemd-analyze verify)
// about every unit, when the machine has it: unknown keys, bad values and
// bad syntax are reported there. The binaries are not installed on the test
// machine, so only that complaint is ignored.
func TestUnitsVerifyWithSystemd(t *testing.T) {
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed; the go-systemd parse in TestUnits still runs")
	}
	for _, u := range loadUnits(t) {
		t.Run(u.Name, func(t *testing.T) {
			path, err := filepath.Abs(u.Path)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out, _ := exec.CommandContext(ctx, bin, "verify", path).CombinedOutput()
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				if line == "" || strings.Contains(line, "is not executable: No such file or directory") {
					continue
				}
				t.Errorf("systemd-analyze verify %s: %s", u.Name, line)
			}
		})
	}
}
