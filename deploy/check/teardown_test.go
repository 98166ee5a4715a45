package check

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestTeardownDeletesOnlyThisClustersAlarms runs `teardown.sh alarms` for
// the stack "shoal" with fake terraform and aws commands. AWS matches the
// name prefix "shoal-" for stack "shoal-prod"'s alarms too, and for any
// alarm someone else named so; only Shoal's alarms of cluster "shoal" may
// go.
func TestTeardownDeletesOnlyThisClustersAlarms(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Fatalf("sh: %v (the script's checks need a POSIX shell)", err)
	}
	dir := t.TempDir()
	deleted := filepath.Join(dir, "deleted")
	// What `describe-alarms --output text --query MetricAlarms[].[name,
	// namespace, ShoalCluster]` prints for the prefix "shoal-".
	listed := "shoal-coordinator-heartbeat\tShoal\tshoal\n" +
		"shoal-web-cpu-high\tShoal\tshoal\n" +
		"shoal-prod-coordinator-heartbeat\tShoal\tshoal-prod\n" +
		"shoal-prod-web-cpu-high\tShoal\tshoal-prod\n" +
		"shoal-billing\tAWS/Billing\t\n"
	if err := os.WriteFile(filepath.Join(dir, "listed"), []byte(listed), 0o600); err != nil {
		t.Fatal(err)
	}
	fakes := map[string]string{
		"terraform": "#!/bin/sh\n[ \"$*\" = 'output -raw secrets_path' ] && echo /shoal/shoal\n",
		"aws": "#!/bin/sh\ncase \"$2\" in\n" +
			"describe-alarms) [ \"$4\" = shoal- ] || exit 3; cat " + filepath.Join(dir, "listed") + ";;\n" +
			"delete-alarms) echo \"$4\" >> " + deleted + ";;\n" +
			"*) exit 2;;\nesac\n",
	}
	for name, src := range fakes {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script, err := filepath.Abs(filepath.Join(deployDir, "terraform", "teardown.sh"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sh, script, "alarms")
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + dir + ":" + os.Getenv("PATH")}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("teardown.sh alarms: %v\n%s", err, out)
	}
	got, err := os.ReadFile(deleted)
	if err != nil {
		t.Fatalf("nothing deleted: %v", err)
	}
	if want := "shoal-coordinator-heartbeat\nshoal-web-cpu-high\n"; string(got) != want {
		t.Errorf("deleted:\n%s\nwant only cluster shoal's Shoal alarms:\n%s", got, want)
	}
	if strings.Contains(string(got), "prod") {
		t.Error("teardown of stack shoal deleted stack shoal-prod's alarms")
	}
}
