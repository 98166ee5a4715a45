package check

import (
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// userData names the Terraform user-data template that writes a unit's
// required environment file on AWS.
var userData = map[string]string{
	"shoal-coordinator.service": "terraform/modules/coordinators/user-data.sh.tftpl",
	"shoal-lb.service":          "terraform/modules/lb/user-data.sh.tftpl",
}

func loadUnits(t *testing.T) []Unit {
	t.Helper()
	units, err := LoadUnits(filepath.Join(deployDir, "systemd"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range units {
		names = append(names, u.Name)
	}
	for _, want := range []string{"shoal-agent.service", "shoal-coordinator.service", "shoal-demoapp.service", "shoal-lb.service"} {
		if !slices.Contains(names, want) {
			t.Errorf("deploy/systemd/%s is missing", want)
		}
	}
	return units
}

func TestUnits(t *testing.T) {
	for _, u := range loadUnits(t) {
		if typ, _ := u.Value("Service", "Type"); typ == "oneshot" {
			t.Run(u.Name, func(t *testing.T) { checkHelperUnit(t, u) })
			continue
		}
		t.Run(u.Name, func(t *testing.T) {
			execs := u.Values("Service", "ExecStart")
			if len(execs) != 1 {
				t.Fatalf("want exactly one ExecStart, got %d", len(execs))
			}
			ex, err := ParseExec(execs[0])
			if err != nil {
				t.Fatal(err)
			}
			name := filepath.Base(ex.Binary)
			if ex.Binary != "/usr/local/bin/"+name {
				t.Errorf("ExecStart runs %s; Packer installs binaries in /usr/local/bin", ex.Binary)
			}
			if m, _ := filepath.Glob(filepath.Join(deployDir, "..", "*", "cmd", name)); len(m) == 0 {
				t.Errorf("ExecStart runs %s, but no */cmd/%s exists in the repository", name, name)
			}
			for _, s := range []struct{ key, want string }{
				{"NoNewPrivileges", "yes"},
				{"ProtectSystem", "strict"},
				{"ProtectHome", "yes"},
				{"PrivateTmp", "yes"},
			} {
				if got, _ := u.Value("Service", s.key); got != s.want {
					t.Errorf("%s=%q, want %s", s.key, got, s.want)
				}
			}
			if r, _ := u.Value("Service", "Restart"); r != "always" && r != "on-failure" {
				t.Errorf("Restart=%q, want always or on-failure", r)
			}
			user, _ := u.Value("Service", "User")
			dynamic, _ := u.Value("Service", "DynamicUser")
			if user == "" || user == "root" || dynamic != "yes" {
				t.Errorf("User=%q DynamicUser=%q: want a dedicated unprivileged user (DynamicUser=yes and a User name)", user, dynamic)
			}
			if wb, _ := u.Value("Install", "WantedBy"); wb != "multi-user.target" {
				t.Errorf("WantedBy=%q, want multi-user.target", wb)
			}

			env, err := UnitEnv(u, deployDir)
			if err != nil {
				t.Fatal(err)
			}
			required, _ := References(ex.Words)
			for _, v := range required {
				if _, ok := env[v]; !ok {
					t.Errorf("ExecStart uses ${%s}, which no EnvironmentFile example or Environment= defines", v)
				}
			}
			if tmpl, ok := userData[u.Name]; ok {
				src, err := os.ReadFile(filepath.Join(deployDir, tmpl))
				if err != nil {
					t.Fatal(err)
				}
				written := map[string]bool{}
				for _, m := range regexp.MustCompile(`(?m)^([A-Z_][A-Z0-9_]*)=`).FindAllStringSubmatch(string(src), -1) {
					written[m[1]] = true
				}
				for _, v := range required {
					if !written[v] {
						t.Errorf("ExecStart needs ${%s}, but %s does not write it", v, tmpl)
					}
				}
				if !strings.Contains(string(src), "systemctl enable --now "+u.Name) {
					t.Errorf("%s does not enable %s", tmpl, u.Name)
				}
			}
			if strings.Contains(u.Name, "coordinator") {
				dir, _ := u.Value("Service", "StateDirectory")
				args := Expand(ex.Words, env)
				i := slices.Index(args, "--data-dir")
				if dir == "" || i < 0 || i+1 >= len(args) || args[i+1] != "/var/lib/"+dir {
					t.Errorf("--data-dir must be the unit's StateDirectory (/var/lib/%s), got %v", dir, args)
				}
			}
		})
	}
}

// TestAgentUnitIsClusterFree checks that one baked image serves every
// cluster: nothing in the agent's unit or its image-wide config names
// coordinators, a fleet or an instance, and every launch path hands the agent
// its coordinators through the shoal:coordinators tag in instance metadata.
func TestAgentUnitIsClusterFree(t *testing.T) {
	var agent *Unit
	for _, u := range loadUnits(t) {
		if u.Name == "shoal-agent.service" {
			agent = &u
		}
	}
	if agent == nil {
		t.Fatal("no shoal-agent.service")
	}
	ex, err := ParseExec(agent.Values("Service", "ExecStart")[0])
	if err != nil {
		t.Fatal(err)
	}
	env, err := UnitEnv(*agent, deployDir)
	if err != nil {
		t.Fatal(err)
	}
	args := Expand(ex.Words, env)
	for _, f := range FlagNames(args) {
		if f == "coordinator" || f == "fleet" || f == "instance-id" {
			t.Errorf("the agent runs with --%s: that is per cluster; it must come from instance metadata", f)
		}
	}
	for _, a := range args {
		for _, word := range regexp.MustCompile(`\d+\.\d+\.\d+\.\d+`).FindAllString(a, -1) {
			if ip, err := netip.ParseAddr(word); err == nil && !ip.IsLoopback() {
				t.Errorf("the agent's command line names %s; only loopback addresses are image-wide", ip)
			}
		}
	}
	for _, f := range agent.Values("Service", "EnvironmentFile") {
		if !strings.HasPrefix(strings.TrimPrefix(f, "-"), "/etc/default/") {
			t.Errorf("EnvironmentFile %s: the agent reads only image-wide files in /etc/default", f)
		}
	}

	fleet := loadModule(t, filepath.Join(deployDir, "terraform", "modules", "fleet"))
	t.Run("the group propagates shoal:coordinators", func(t *testing.T) {
		asg := resource(t, fleet, "aws_autoscaling_group", "fleet")
		var ok bool
		for _, tag := range asg.Body.Blocks {
			if tag.Type == "tag" && literal(t, tag.Body, "key") == "shoal:coordinators" {
				v, _ := tag.Body.Attributes["propagate_at_launch"].Expr.Value(nil)
				ok = v.True()
			}
		}
		if !ok {
			t.Error("aws_autoscaling_group.fleet has no tag shoal:coordinators with propagate_at_launch = true")
		}
	})
	t.Run("instances expose tags in metadata", func(t *testing.T) {
		lt := resource(t, fleet, "aws_launch_template", "fleet")
		checkMetadataTags(t, "aws_launch_template.fleet", lt.Body)
		// fleet bootstrap makes its own launch template with the same
		// options; no region-wide default stands in for it.
		src, err := os.ReadFile(filepath.Join(deployDir, "..", "coordinator", "internal", "bootstrap", "bootstrap.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"IMDSv2Required: true", "MetadataTags: true"} {
			if !strings.Contains(string(src), want) {
				t.Errorf("fleet bootstrap's launch template (coordinator/internal/bootstrap) lacks %s", want)
			}
		}
	})
}

// checkHelperUnit checks a oneshot unit that runs one of deploy/systemd's
// scripts (a timer's job): the script exists and Packer installs it where
// ExecStart looks, and a timer starts the unit.
func checkHelperUnit(t *testing.T, u Unit) {
	execs := u.Values("Service", "ExecStart")
	if len(execs) != 1 {
		t.Fatalf("want exactly one ExecStart, got %d", len(execs))
	}
	ex, err := ParseExec(execs[0])
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(ex.Binary)
	if ex.Binary != "/usr/local/libexec/shoal/"+name {
		t.Errorf("ExecStart runs %s; a helper script is installed in /usr/local/libexec/shoal", ex.Binary)
	}
	if st, err := os.Stat(filepath.Join(deployDir, "systemd", name)); err != nil || st.Mode()&0o111 == 0 {
		t.Errorf("deploy/systemd/%s is missing or not executable (%v)", name, err)
	}
	for _, s := range []struct{ key, want string }{{"NoNewPrivileges", "yes"}, {"ProtectSystem", "strict"}, {"ProtectHome", "yes"}, {"PrivateTmp", "yes"}} {
		if got, _ := u.Value("Service", s.key); got != s.want {
			t.Errorf("%s=%q, want %s", s.key, got, s.want)
		}
	}
	timer := strings.TrimSuffix(u.Path, ".service") + ".timer"
	b, err := os.ReadFile(timer)
	if err != nil {
		t.Fatalf("a oneshot helper needs its timer %s: %v", filepath.Base(timer), err)
	}
	if !strings.Contains(string(b), "[Timer]") || !strings.Contains(string(b), "WantedBy=timers.target") {
		t.Errorf("%s has no [Timer] section or is not wanted by timers.target", filepath.Base(timer))
	}
}

func checkMetadataTags(t *testing.T, what string, body *hclsyntax.Body) {
	t.Helper()
	if _, ok := body.Attributes["instance_metadata_tags"]; !ok {
		for _, b := range body.Blocks {
			if b.Type == "metadata_options" {
				body = b.Body
			}
		}
	}
	if got := literal(t, body, "instance_metadata_tags"); got != "enabled" {
		t.Errorf("%s: instance_metadata_tags = %q, want enabled (the agent reads shoal:coordinators from IMDS)", what, got)
	}
	if got := literal(t, body, "http_tokens"); got != "required" {
		t.Errorf("%s: http_tokens = %q, want required (IMDSv2)", what, got)
	}
}

func resource(t *testing.T, m *tfModule, typ, name string) *hclsyntax.Block {
	t.Helper()
	for _, f := range m.files {
		for _, b := range f.body.Blocks {
			if b.Type == "resource" && b.Labels[0] == typ && b.Labels[1] == name {
				return b
			}
		}
	}
	t.Fatalf("%s has no resource %s.%s", m.dir, typ, name)
	return nil
}

func TestExecHelpers(t *testing.T) {
	env := map[string]string{"A": "x", "FLAGS": "--one 1 --two=2", "EMPTY": ""}
	tests := []struct {
		name  string
		words []string
		want  []string
	}{
		{name: "braced in place", words: []string{"--addr", "${A}:7400"}, want: []string{"--addr", "x:7400"}},
		{name: "bare word splits", words: []string{"serve", "$FLAGS"}, want: []string{"serve", "--one", "1", "--two=2"}},
		{name: "bare empty vanishes", words: []string{"$EMPTY", "$UNSET", "--z"}, want: []string{"--z"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Expand(tc.words, env); !slices.Equal(got, tc.want) {
				t.Fatalf("Expand = %q, want %q", got, tc.want)
			}
		})
	}
	args := Expand([]string{"serve", "--a", "1", "$FLAGS"}, env)
	if got := FlagNames(args); !slices.Equal(got, []string{"a", "one", "two"}) {
		t.Errorf("FlagNames = %v", got)
	}
	if got := Subcommands(args); !slices.Equal(got, []string{"serve"}) {
		t.Errorf("Subcommands = %v", got)
	}
	if ex, err := ParseExec("/bin/x serve \\\n    --a 1 \\\n    --b"); err != nil || !slices.Equal(ex.Words, []string{"serve", "--a", "1", "--b"}) {
		t.Errorf("continued line: got %q, %v; want [serve --a 1 --b]", ex.Words, err)
	}
	if _, err := ParseExec(`/bin/x "quoted arg"`); err == nil {
		t.Error("ParseExec accepted a quoted line")
	}
	if _, err := ParseExec(`shoal-lb serve`); err == nil {
		t.Error("ParseExec accepted a relative binary")
	}
}
