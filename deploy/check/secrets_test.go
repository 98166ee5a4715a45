package check

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// secretsScript is the coordinator's ExecStartPre, under deploy/.
const secretsScript = "systemd/shoal-coordinator-secrets"

// secretsInstalled is where Packer installs it.
const secretsInstalled = "/usr/local/libexec/shoal/shoal-coordinator-secrets"

var (
	fetchLine   = regexp.MustCompile(`(?m)^fetch "([^"]+)" (\S+)$`)
	requiredVar = regexp.MustCompile(`(?m)^: "\$\{([A-Z_][A-Z0-9_]*):\?`)
)

func coordinatorUnit(t *testing.T) Unit {
	t.Helper()
	return namedUnit(t, "shoal-coordinator.service")
}

func namedUnit(t *testing.T, name string) Unit {
	t.Helper()
	for _, u := range loadUnits(t) {
		if u.Name == name {
			return u
		}
	}
	t.Fatalf("no %s", name)
	return Unit{}
}

func packerSource(t *testing.T) string {
	t.Helper()
	paths, _ := filepath.Glob(filepath.Join(deployDir, "packer", "*.pkr.hcl"))
	var all strings.Builder
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(b)
	}
	return all.String()
}

// flagValue returns the value after --name in args ("" when absent).
func flagValue(args []string, name string) string {
	for i, a := range args {
		if a == "--"+name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	return ""
}

// secretsFetch is one unit's ExecStartPre that copies its TLS secrets from
// SSM into its RuntimeDirectory, and the serve flags that read them.
type secretsFetch struct {
	unit      string   // e.g. shoal-lb.service
	script    string   // under deploy/
	installed string   // where Packer installs it
	under     string   // the parameters it may read, below $SHOAL_SECRETS_PATH
	flags     []string // serve flags naming the fetched files
}

var secretFetches = []secretsFetch{
	{unit: "shoal-coordinator.service", script: secretsScript, installed: secretsInstalled, under: "/", flags: []string{"ca-key", "cert", "key"}},
	{unit: "shoal-lb.service", script: lbSecretsScript, installed: lbSecretsInstalled, under: "/lb/", flags: []string{"cert", "key"}},
}

// lbSecretsScript is shoal-lb's ExecStartPre, under deploy/, and where
// Packer installs it.
const (
	lbSecretsScript    = "systemd/shoal-lb-secrets"
	lbSecretsInstalled = "/usr/local/libexec/shoal/shoal-lb-secrets"
)

// TestSecretsPaths follows each unit's TLS material from where it is kept to
// the flags that read it, offline: the ExecStartPre script Packer installs
// fetches exactly the files the serve flags name, into the unit's
// RuntimeDirectory, from parameters under the path the unit's IAM policy
// admits; --ca-cert names the file Packer bakes.
func TestSecretsPaths(t *testing.T) {
	for _, sf := range secretFetches {
		t.Run(sf.unit, func(t *testing.T) { checkSecretsFetch(t, sf) })
	}
}

func checkSecretsFetch(t *testing.T, sf secretsFetch) {
	u := namedUnit(t, sf.unit)
	pre := u.Values("Service", "ExecStartPre")
	if len(pre) != 1 {
		t.Fatalf("want exactly one ExecStartPre (the secrets fetch), got %d", len(pre))
	}
	ex, err := ParseExec(pre[0])
	if err != nil {
		t.Fatal(err)
	}
	if ex.Binary != sf.installed {
		t.Errorf("ExecStartPre runs %s, want %s", ex.Binary, sf.installed)
	}
	rt, _ := u.Value("Service", "RuntimeDirectory")
	if mode, _ := u.Value("Service", "RuntimeDirectoryMode"); rt == "" || mode != "0700" {
		t.Errorf("RuntimeDirectory=%q RuntimeDirectoryMode=%q; the keys need a 0700 tmpfs of the unit's own", rt, mode)
	}
	dir := "/run/" + rt
	if len(ex.Words) != 1 || ex.Words[0] != dir {
		t.Errorf("ExecStartPre arguments %q, want the RuntimeDirectory %s", ex.Words, dir)
	}

	script := filepath.Join(deployDir, sf.script)
	src, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(script); err != nil || st.Mode()&0o111 == 0 {
		t.Errorf("%s is not executable (%v)", sf.script, err)
	}
	if sh, err := exec.LookPath("sh"); err == nil {
		if out, err := exec.Command(sh, "-n", script).CombinedOutput(); err != nil {
			t.Errorf("sh -n %s: %v\n%s", sf.script, err, out)
		}
	}
	fetched := map[string]string{} // file in dir -> parameter
	for _, m := range fetchLine.FindAllStringSubmatch(string(src), -1) {
		if !strings.HasPrefix(m[1], "$SHOAL_SECRETS_PATH"+sf.under) {
			t.Errorf("%s fetches %s, outside $SHOAL_SECRETS_PATH%s (the only path the unit's role may read)", sf.script, m[1], sf.under)
		}
		fetched[dir+"/"+m[2]] = m[1]
	}
	if len(fetched) == 0 {
		t.Fatalf("%s has no fetch \"PARAMETER\" FILE line", sf.script)
	}

	main, err := ParseExec(u.Values("Service", "ExecStart")[0])
	if err != nil {
		t.Fatal(err)
	}
	env, err := UnitEnv(u, deployDir)
	if err != nil {
		t.Fatal(err)
	}
	args := Expand(main.Words, env)
	var used []string
	for _, flag := range sf.flags {
		v := flagValue(args, flag)
		if _, ok := fetched[v]; !ok {
			t.Errorf("serve --%s %q is not a file %s writes (it writes %v)", flag, v, sf.script, slices.Sorted(mapKeys(fetched)))
		}
		used = append(used, v)
	}
	for f := range fetched {
		if !slices.Contains(used, f) {
			t.Errorf("%s fetches %s, which no serve flag reads", sf.script, f)
		}
	}

	pk := packerSource(t)
	for _, want := range []string{"/" + sf.script + "\"", sf.installed} {
		if !strings.Contains(pk, want) {
			t.Errorf("the Packer template does not install %s (%q missing)", sf.script, want)
		}
	}
	if ca := flagValue(args, "ca-cert"); ca != "/etc/shoal/ca.pem" || !strings.Contains(pk, " "+ca+"\"") {
		t.Errorf("serve --ca-cert %q: want /etc/shoal/ca.pem, installed by the Packer template", ca)
	}

	t.Run("the script's variables are written", func(t *testing.T) {
		ud, err := os.ReadFile(filepath.Join(deployDir, userData[u.Name]))
		if err != nil {
			t.Fatal(err)
		}
		vars := requiredVar.FindAllStringSubmatch(string(src), -1)
		if len(vars) == 0 {
			t.Fatalf("%s checks no variable with : \"${NAME:?...}\"", sf.script)
		}
		for _, m := range vars {
			if _, ok := env[m[1]]; !ok {
				t.Errorf("%s needs $%s, which the unit's environment example does not define", sf.script, m[1])
			}
			if !regexp.MustCompile(`(?m)^` + m[1] + `=`).Match(ud) {
				t.Errorf("%s needs $%s, which %s does not write", sf.script, m[1], userData[u.Name])
			}
		}
	})
}

// TestCoordinatorTrustFiles: the coordinator's --iid-trust names the
// region's file Packer bakes.
func TestCoordinatorTrustFiles(t *testing.T) {
	u := coordinatorUnit(t)
	main, err := ParseExec(u.Values("Service", "ExecStart")[0])
	if err != nil {
		t.Fatal(err)
	}
	pk := packerSource(t)
	trust := flagValue(main.Words, "iid-trust")
	if trust != "/etc/shoal/iid-trust/${AWS_REGION}.pem" || !strings.Contains(pk, "/etc/shoal/iid-trust/") {
		t.Errorf("serve --iid-trust %q: want /etc/shoal/iid-trust/${AWS_REGION}.pem, the region's file Packer bakes", trust)
	}
	if _, err := os.Stat(filepath.Join(deployDir, "iid-trust", "us-east-1.pem")); err != nil {
		t.Errorf("deploy/iid-trust/us-east-1.pem: %v", err)
	}
	if !strings.Contains(pk, "/us-east-1.pem\"") {
		t.Error("the Packer template does not bake deploy/iid-trust/us-east-1.pem")
	}
}

func mapKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if !yield(k) {
				return
			}
		}
	}
}

// TestAgentsReachOnlyTheAgentPort checks the network split: serve has an
// agent listener on its own port, the fleet's instances (Terraform's and
// `fleet bootstrap`'s) may reach the coordinators on that port only, and
// agents are told that port.
func TestAgentsReachOnlyTheAgentPort(t *testing.T) {
	u := coordinatorUnit(t)
	main, err := ParseExec(u.Values("Service", "ExecStart")[0])
	if err != nil {
		t.Fatal(err)
	}
	if got := flagValue(main.Words, "agent-addr"); got != "${SHOAL_BIND_IP}:${SHOAL_AGENT_PORT}" {
		t.Errorf("serve --agent-addr %q, want ${SHOAL_BIND_IP}:${SHOAL_AGENT_PORT}", got)
	}
	env, err := UnitEnv(u, deployDir)
	if err != nil {
		t.Fatal(err)
	}
	if env["SHOAL_AGENT_PORT"] == "" || env["SHOAL_AGENT_PORT"] == env["SHOAL_RPC_PORT"] {
		t.Errorf("coordinator.env.example: SHOAL_AGENT_PORT=%q must be its own port (SHOAL_RPC_PORT=%q)", env["SHOAL_AGENT_PORT"], env["SHOAL_RPC_PORT"])
	}

	sec := loadModule(t, filepath.Join(deployDir, "terraform", "modules", "security"))
	var agentRules int
	for _, f := range sec.files {
		for _, b := range f.body.Blocks {
			if b.Type != "resource" || b.Labels[0] != "aws_vpc_security_group_ingress_rule" {
				continue
			}
			if !refersTo(b.Body, "security_group_id", "aws_security_group", "coordinators") {
				continue
			}
			fromFleet := refersTo(b.Body, "referenced_security_group_id", "aws_security_group", "fleet")
			agentPort := refersTo(b.Body, "from_port", "var", "agent_port") && refersTo(b.Body, "to_port", "var", "agent_port")
			switch {
			case fromFleet && !agentPort:
				t.Errorf("%s: the fleet may reach the coordinators on var.agent_port only", b.Range())
			case !fromFleet && agentPort:
				t.Errorf("%s: only the fleet needs the agent port", b.Range())
			case fromFleet:
				agentRules++
			}
		}
	}
	if agentRules != 1 {
		t.Errorf("%d rules admit the fleet to the agent port; want 1 (the fleet group, which fleet bootstrap copies from the golden instance)", agentRules)
	}

	root := loadModule(t, filepath.Join(deployDir, "terraform"))
	for _, f := range root.files {
		for _, b := range f.body.Blocks {
			if b.Type == "module" && b.Labels[0] == "fleet" {
				if !refersTo(b.Body, "coordinators", "var", "agent_port") || refersTo(b.Body, "coordinators", "var", "grpc_port") {
					t.Errorf("%s: module fleet's coordinators (the agents' shoal:coordinators tag) must use var.agent_port", b.Range())
				}
			}
		}
	}
}

// refersTo reports whether body's attribute name mentions root.step.
func refersTo(body *hclsyntax.Body, name, root, step string) bool {
	a, ok := body.Attributes[name]
	if !ok {
		return false
	}
	for _, tr := range a.Expr.Variables() {
		if tr.RootName() == root && stepName(tr, 1) == step {
			return true
		}
	}
	return false
}
