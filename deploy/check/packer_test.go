package check

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

func TestPacker(t *testing.T) {
	dir := filepath.Join(deployDir, "packer")
	paths, err := filepath.Glob(filepath.Join(dir, "*.pkr.hcl"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no Packer template in %s (%v)", dir, err)
	}
	var files []hclFile
	for _, p := range paths {
		files = append(files, parseHCL(t, p))
	}
	blocks := func(typ string) []*hclsyntax.Block {
		var out []*hclsyntax.Block
		for _, f := range files {
			for _, b := range f.body.Blocks {
				if b.Type == typ {
					out = append(out, b)
				}
			}
		}
		return out
	}

	t.Run("requires the amazon plugin", func(t *testing.T) {
		var found bool
		for _, pk := range blocks("packer") {
			for _, rp := range pk.Body.Blocks {
				if rp.Type != "required_plugins" {
					continue
				}
				a, ok := rp.Body.Attributes["amazon"]
				if !ok {
					continue
				}
				v, diags := a.Expr.Value(nil)
				if diags.HasErrors() || !v.Type().IsObjectType() || !v.Type().HasAttribute("source") || !v.Type().HasAttribute("version") {
					t.Fatalf("required_plugins.amazon must be { source = ..., version = ... }: %s", diags.Error())
				}
				if src := v.GetAttr("source").AsString(); src != "github.com/hashicorp/amazon" {
					t.Errorf("required_plugins.amazon.source = %q, want github.com/hashicorp/amazon", src)
				}
				found = true
			}
		}
		if !found {
			t.Fatal("no packer { required_plugins { amazon = {...} } } block: current Packer needs it to install the amazon-ebs builder")
		}
	})

	t.Run("amazon-ebs requires IMDSv2", func(t *testing.T) {
		var sources int
		for _, s := range blocks("source") {
			if s.Labels[0] != "amazon-ebs" {
				t.Errorf("source %s.%s: only amazon-ebs is expected", s.Labels[0], s.Labels[1])
				continue
			}
			sources++
			if got := literal(t, s.Body, "imds_support"); got != "v2.0" {
				t.Errorf("source %s: imds_support = %q, want v2.0 (instances from the AMI default to IMDSv2)", s.Labels[1], got)
			}
			var tokens string
			for _, mo := range s.Body.Blocks {
				if mo.Type == "metadata_options" {
					tokens = literal(t, mo.Body, "http_tokens")
				}
			}
			if tokens != "required" {
				t.Errorf("source %s: metadata_options.http_tokens = %q, want required", s.Labels[1], tokens)
			}
		}
		if sources == 0 {
			t.Fatal("no amazon-ebs source")
		}
	})

	declared := map[string]bool{}
	localExprs := map[string]hclsyntax.Expression{}
	for _, v := range blocks("variable") {
		declared[v.Labels[0]] = true
	}
	for _, l := range blocks("locals") {
		for name, a := range l.Body.Attributes {
			localExprs[name] = a.Expr
		}
	}
	t.Run("references are declared", func(t *testing.T) {
		for _, f := range files {
			for _, tr := range traversals(f.body) {
				name := stepName(tr, 1)
				switch tr.RootName() {
				case "var":
					if !declared[name] {
						t.Errorf("%s: var.%s is not declared", tr.SourceRange(), name)
					}
				case "local":
					if localExprs[name] == nil {
						t.Errorf("%s: local.%s is not declared", tr.SourceRange(), name)
					}
				}
			}
		}
	})

	t.Run("provisioned files exist", func(t *testing.T) {
		ctx := pathContext(dir)
		locals := map[string]cty.Value{}
		for name, e := range localExprs {
			// Only path-built locals can be evaluated offline (not timestamp()).
			if v, diags := e.Value(ctx); !diags.HasErrors() {
				locals[name] = v
			}
		}
		ctx.Variables["local"] = cty.ObjectVal(locals)
		binDir := filepath.Clean(filepath.Join(deployDir, "..", "bin"))
		var checked int
		for _, b := range blocks("build") {
			for _, p := range b.Body.Blocks {
				if p.Type != "provisioner" || p.Labels[0] != "file" {
					continue
				}
				a, ok := p.Body.Attributes["sources"]
				if !ok {
					a, ok = p.Body.Attributes["source"]
				}
				if !ok {
					t.Errorf("%s: file provisioner without source(s)", p.Range())
					continue
				}
				if operatorFile(a.Expr) {
					// A file the operator names at build time (-var),
					// such as their cluster's CA certificate.
					continue
				}
				v, diags := a.Expr.Value(ctx)
				if diags.HasErrors() {
					t.Fatalf("%s: cannot evaluate file sources offline: %s", a.Range(), diags.Error())
				}
				var srcs []cty.Value
				if v.Type() == cty.String {
					srcs = []cty.Value{v}
				} else {
					srcs = v.AsValueSlice()
				}
				for _, sv := range srcs {
					src := filepath.Clean(sv.AsString())
					checked++
					if filepath.Dir(src) == binDir {
						// Built by `make build`, so not in git: the name must
						// be a command in this repository.
						if m, _ := filepath.Glob(filepath.Join(deployDir, "..", "*", "cmd", filepath.Base(src))); len(m) == 0 {
							t.Errorf("Packer uploads bin/%s, but no */cmd/%s exists", filepath.Base(src), filepath.Base(src))
						}
						continue
					}
					if _, err := os.Stat(src); err != nil {
						t.Errorf("Packer uploads %s: %v", src, err)
					}
				}
			}
		}
		if checked == 0 {
			t.Fatal("the Packer build provisions no files")
		}
	})

	t.Run("bakes every unit and the agent config", func(t *testing.T) {
		var all strings.Builder
		for _, p := range paths {
			b, _ := os.ReadFile(p)
			all.Write(b)
		}
		units, err := LoadUnits(filepath.Join(deployDir, "systemd"))
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range units {
			if !strings.Contains(all.String(), "/systemd/"+u.Name) {
				t.Errorf("deploy/systemd/%s is not uploaded by the Packer template", u.Name)
			}
		}
		for _, want := range []string{"config/shoal-agent.default", "/etc/default/shoal-agent", "systemctl enable shoal-agent.service shoal-demoapp.service"} {
			if !strings.Contains(all.String(), want) {
				t.Errorf("the Packer template does not contain %q", want)
			}
		}
	})
}

// operatorFile reports whether a file provisioner's source comes from a
// variable: the operator's own file, which the repository cannot hold.
func operatorFile(e hclsyntax.Expression) bool {
	for _, tr := range e.Variables() {
		if tr.RootName() == "var" {
			return true
		}
	}
	return false
}

// literal returns a string attribute's literal value ("" when absent).
func literal(t *testing.T, body *hclsyntax.Body, name string) string {
	t.Helper()
	a, ok := body.Attributes[name]
	if !ok {
		return ""
	}
	v, diags := a.Expr.Value(&hcl.EvalContext{})
	if diags.HasErrors() || v.Type() != cty.String {
		t.Fatalf("%s: %s must be a literal string", a.Range(), name)
	}
	return v.AsString()
}
