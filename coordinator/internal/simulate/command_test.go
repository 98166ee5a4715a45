package simulate

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/shoal-dev/shoal/coordinator/internal/view"
)

func runCommand(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := NewCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(io.Discard)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

const examplePolicy = "../../../deploy/traces/policy.json"

func TestCommandJSON(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(dir, "t.csv")
	writeFile(t, trace, "time,demand\n0,400\n600,2000\n1200,400\n1800,400\n")
	svg := filepath.Join(dir, "out.svg")
	out, err := runCommand(t, "--trace", trace, "--policy", examplePolicy, "-o", "json", "--svg", svg, "--launch-delay", "30s")
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatalf("output is not a JSON array: %v\n%s", err, out)
	}
	if len(rows) != 4 {
		t.Fatalf("rows = %d, want 4", len(rows))
	}
	wantKeys := []string{"accuracy_o", "accuracy_u", "cost_usd", "instance_hours", "instance_seconds", "jitter", "policy", "slo_breach_s", "timeshare_o", "timeshare_u"}
	for i, want := range []string{"shoal", "aws-target-tracking", "aws-target-tracking-hires", "hpa"} {
		var keys []string
		for k := range rows[i] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if strings.Join(keys, ",") != strings.Join(wantKeys, ",") {
			t.Fatalf("row %d keys = %v, want %v", i, keys, wantKeys)
		}
		if rows[i]["policy"] != want {
			t.Fatalf("row %d policy = %v, want %s", i, rows[i]["policy"], want)
		}
		secs, hours, cost := rows[i]["instance_seconds"].(float64), rows[i]["instance_hours"].(float64), rows[i]["cost_usd"].(float64)
		if secs <= 0 || math.Abs(secs/3600-hours) > 1e-9 || math.Abs(cost-hours*DefaultPricePerHour) > 1e-9 {
			t.Fatalf("row %d: instance_seconds %v, instance_hours %v, cost_usd %v: want seconds/3600 = hours and cost = hours × %v", i, secs, hours, cost, DefaultPricePerHour)
		}
	}

	b, err := os.ReadFile(svg)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		XMLName   xml.Name   `xml:"svg"`
		Polylines []struct{} `xml:"polyline"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("svg is not well-formed: %v", err)
	}
	if len(doc.Polylines) != 5 {
		t.Fatalf("svg has %d polylines, want 5 (demand + 4 policies)", len(doc.Polylines))
	}
}

func TestCommandTable(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(dir, "t.csv")
	writeFile(t, trace, "time,demand\n0,300\n100,300\n")
	out, err := runCommand(t, "--trace", trace, "--policy", examplePolicy, "--compare", "hpa,aws-target-tracking-hires:30")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.Contains(lines[0], "TIMESHARE_U") || !strings.Contains(lines[0], "COST_USD") ||
		!strings.HasPrefix(strings.TrimSpace(lines[1]), "shoal") || !strings.HasPrefix(strings.TrimSpace(lines[2]), "hpa") ||
		!strings.HasPrefix(strings.TrimSpace(lines[3]), "aws-target-tracking-hires:30") {
		t.Fatalf("table:\n%s", out)
	}
}

func TestCommandErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	writeFile(t, bad, "time,demand\n0,1\n1,2\n2,lots\n")
	good := filepath.Join(dir, "good.csv")
	writeFile(t, good, "time,demand\n0,1\n")
	typo := filepath.Join(dir, "typo.json")
	writeFile(t, typo, `{"min":1,"max":3,"desird":2}`)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{name: "bad row names the line", args: []string{"--trace", bad, "--policy", examplePolicy}, want: `line 4: demand: not a number: "lots"`},
		{name: "missing trace", args: []string{"--policy", examplePolicy}, want: "--trace: required"},
		{name: "unknown key in policy", args: []string{"--trace", good, "--policy", typo}, want: `unknown field "desird"`},
		{name: "bad output", args: []string{"--trace", good, "--policy", examplePolicy, "-o", "yaml"}, want: "want table or json"},
		{name: "bad compare", args: []string{"--trace", good, "--policy", examplePolicy, "--compare", "gke"}, want: `unknown policy "gke"`},
		{name: "hires period 20", args: []string{"--trace", good, "--policy", examplePolicy, "--compare", "aws-target-tracking-hires:20"}, want: `"aws-target-tracking-hires:20": the period after aws-target-tracking-hires: must be 10, 30 or 60 s`},
		{name: "hires period not a number", args: []string{"--trace", good, "--policy", examplePolicy, "--compare", "aws-target-tracking-hires:ten"}, want: "must be 10, 30 or 60 s"},
		{name: "negative price", args: []string{"--trace", good, "--policy", examplePolicy, "--price-per-hour", "-1"}, want: "--price-per-hour: must be a finite number >= 0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := runCommand(t, c.args...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}

// TestExamplePolicyIsFleetGetOutput: deploy/traces/policy.json is exactly
// what `fleet get -o json` prints for that fleet (view.Fleet, indented), so
// an operator's own output is accepted unchanged.
func TestExamplePolicyIsFleetGetOutput(t *testing.T) {
	b, err := os.ReadFile(examplePolicy)
	if err != nil {
		t.Fatal(err)
	}
	f, err := view.ParseFleet(b)
	if err != nil {
		t.Fatal(err)
	}
	again, err := json.MarshalIndent(view.FleetOf(f), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(again)) != strings.TrimSpace(string(b)) {
		t.Fatalf("policy.json differs from view.Fleet output:\n%s", again)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCommandSustain: without --sustain the policy file's sustain runs;
// --sustain replaces it only when given, even when given as 0.
func TestCommandSustain(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(dir, "t.csv")
	// A 1 s spike: policy.json's sustain 0.02 of the 60 s launch delay
	// (1.2 s) does not buy it; sustain 0 does.
	writeFile(t, trace, "time,demand\n0,400\n100,2000\n101,400\n400,400\n")
	hours := func(args ...string) float64 {
		t.Helper()
		out, err := runCommand(t, append([]string{"--trace", trace, "--policy", examplePolicy, "--compare", "", "-o", "json"}, args...)...)
		if err != nil {
			t.Fatal(err)
		}
		var rows []Score
		if err := json.Unmarshal([]byte(out), &rows); err != nil || len(rows) != 1 {
			t.Fatalf("rows %v, %v:\n%s", rows, err, out)
		}
		return rows[0].InstanceHours
	}
	own, zero, same := hours(), hours("--sustain", "0"), hours("--sustain", "0.02")
	if !(zero > own) {
		t.Fatalf("instance-hours: policy's own sustain %v, --sustain 0 %v; want --sustain 0 to buy the spike", own, zero)
	}
	if same != own {
		t.Fatalf("instance-hours: --sustain 0.02 %v, the policy's own 0.02 %v; want equal", same, own)
	}
	if _, err := runCommand(t, "--trace", trace, "--policy", examplePolicy, "--sustain", "NaN"); err == nil || !strings.Contains(err.Error(), "sustain: must be in [0, 2] (got NaN)") {
		t.Fatalf("--sustain NaN: err = %v", err)
	}
}
