package check

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
)

const deployDir = ".."

// hclFile is one parsed HCL file.
type hclFile struct {
	path string
	body *hclsyntax.Body
}

// parseHCL parses path with hclparse and checks it is canonical
// (hclwrite.Format, i.e. what `terraform fmt`/`packer fmt` would write).
func parseHCL(t *testing.T, path string) hclFile {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, diags := hclparse.NewParser().ParseHCL(src, path)
	if diags.HasErrors() {
		t.Fatalf("%s does not parse: %s", path, diags.Error())
	}
	if formatted := hclwrite.Format(src); !bytes.Equal(formatted, src) {
		t.Errorf("%s is not in canonical format; first difference at line %d (run terraform fmt / packer fmt)", path, firstDiffLine(src, formatted))
	}
	return hclFile{path: path, body: f.Body.(*hclsyntax.Body)}
}

func firstDiffLine(a, b []byte) int {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range min(len(la), len(lb)) {
		if la[i] != lb[i] {
			return i + 1
		}
	}
	return min(len(la), len(lb)) + 1
}

// tfModule is one Terraform module directory.
type tfModule struct {
	dir       string
	files     []hclFile
	variables map[string]*hclsyntax.Block
	locals    map[string]bool
	outputs   map[string]bool
	modules   map[string]*hclsyntax.Block
	resources map[string]bool // "type.name"
	data      map[string]bool // "type.name"
}

func loadModule(t *testing.T, dir string) *tfModule {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no .tf files in %s (%v)", dir, err)
	}
	m := &tfModule{dir: dir, variables: map[string]*hclsyntax.Block{}, locals: map[string]bool{}, outputs: map[string]bool{}, modules: map[string]*hclsyntax.Block{}, resources: map[string]bool{}, data: map[string]bool{}}
	for _, p := range paths {
		f := parseHCL(t, p)
		m.files = append(m.files, f)
		for _, b := range f.body.Blocks {
			switch b.Type {
			case "variable":
				m.variables[b.Labels[0]] = b
			case "output":
				m.outputs[b.Labels[0]] = true
			case "module":
				m.modules[b.Labels[0]] = b
			case "locals":
				for name := range b.Body.Attributes {
					m.locals[name] = true
				}
			case "resource":
				m.resources[b.Labels[0]+"."+b.Labels[1]] = true
			case "data":
				m.data[b.Labels[0]+"."+b.Labels[1]] = true
			}
		}
	}
	return m
}

// traversals returns every variable reference in body, with where it is.
// Type constraints (`type = string`) and `ignore_changes` lists are
// keywords and attribute names, not references, so they are left out.
func traversals(body *hclsyntax.Body) []hcl.Traversal {
	return collect(body, "")
}

func collect(body *hclsyntax.Body, blockType string) []hcl.Traversal {
	var out []hcl.Traversal
	for name, a := range body.Attributes {
		if (blockType == "variable" && name == "type") || (blockType == "lifecycle" && name == "ignore_changes") {
			continue
		}
		out = append(out, a.Expr.Variables()...)
	}
	for _, b := range body.Blocks {
		out = append(out, collect(b.Body, b.Type)...)
	}
	return out
}

func stepName(tr hcl.Traversal, i int) string {
	if i >= len(tr) {
		return ""
	}
	switch s := tr[i].(type) {
	case hcl.TraverseRoot:
		return s.Name
	case hcl.TraverseAttr:
		return s.Name
	}
	return ""
}

// terraformModules lists the root module and every module under modules/.
func terraformModules(t *testing.T) []string {
	t.Helper()
	root := filepath.Join(deployDir, "terraform")
	dirs := []string{root}
	sub, err := filepath.Glob(filepath.Join(root, "modules", "*"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(sub)
	return append(dirs, sub...)
}

func TestTerraform(t *testing.T) {
	loaded := map[string]*tfModule{}
	for _, dir := range terraformModules(t) {
		loaded[filepath.Clean(dir)] = loadModule(t, dir)
	}
	for _, dir := range terraformModules(t) {
		m := loaded[filepath.Clean(dir)]
		t.Run(dir, func(t *testing.T) {
			t.Run("references are declared", func(t *testing.T) {
				for _, f := range m.files {
					for _, tr := range traversals(f.body) {
						root, name := tr.RootName(), stepName(tr, 1)
						where := tr.SourceRange().String()
						switch root {
						case "var":
							if m.variables[name] == nil {
								t.Errorf("%s: var.%s is used but not declared in %s", where, name, dir)
							}
						case "local":
							if !m.locals[name] {
								t.Errorf("%s: local.%s is used but not declared in %s", where, name, dir)
							}
						case "data":
							if key := name + "." + stepName(tr, 2); !m.data[key] {
								t.Errorf("%s: data.%s is used but not declared in %s", where, key, dir)
							}
						case "path", "count", "each", "self", "terraform":
						case "module":
							call := m.modules[name]
							if call == nil {
								t.Errorf("%s: module.%s is used but no module block declares it", where, name)
								continue
							}
							if out := stepName(tr, 2); out != "" {
								child := loaded[filepath.Clean(filepath.Join(dir, moduleSource(t, call)))]
								if child != nil && !child.outputs[out] {
									t.Errorf("%s: module.%s.%s: module %s has no output %q", where, name, out, child.dir, out)
								}
							}
						default:
							// Anything else is a managed resource, type.name.
							if key := root + "." + name; !m.resources[key] && !isIterator(f.body, root) {
								t.Errorf("%s: %s is used but no resource declares it in %s", where, key, dir)
							}
						}
					}
				}
			})
			t.Run("module calls match their modules", func(t *testing.T) {
				for name, call := range m.modules {
					src := moduleSource(t, call)
					if !strings.HasPrefix(src, "./") && !strings.HasPrefix(src, "../") {
						t.Errorf("module %s: source %q must be a local path in this repository", name, src)
						continue
					}
					childDir := filepath.Clean(filepath.Join(dir, src))
					if st, err := os.Stat(childDir); err != nil || !st.IsDir() {
						t.Errorf("module %s: source %q does not exist (%s)", name, src, childDir)
						continue
					}
					child := loaded[childDir]
					if child == nil {
						t.Errorf("module %s: source %s is not under deploy/terraform/modules, so it is not checked", name, childDir)
						continue
					}
					meta := map[string]bool{"source": true, "version": true, "count": true, "for_each": true, "depends_on": true, "providers": true}
					for arg := range call.Body.Attributes {
						if !meta[arg] && child.variables[arg] == nil {
							t.Errorf("module %s passes %q, which %s does not declare", name, arg, childDir)
						}
					}
					for v, decl := range child.variables {
						if _, hasDefault := decl.Body.Attributes["default"]; !hasDefault {
							if _, passed := call.Body.Attributes[v]; !passed {
								t.Errorf("module %s does not pass required variable %q of %s", name, v, childDir)
							}
						}
					}
				}
			})
			t.Run("variables are described and typed", func(t *testing.T) {
				for name, decl := range m.variables {
					for _, attr := range []string{"description", "type"} {
						if _, ok := decl.Body.Attributes[attr]; !ok {
							t.Errorf("variable %q in %s has no %s", name, dir, attr)
						}
					}
				}
			})
			t.Run("files read exist", func(t *testing.T) {
				for _, f := range m.files {
					for _, call := range fileCalls(f.body) {
						p := pathArg(t, call, dir)
						if _, err := os.Stat(p); err != nil {
							t.Errorf("%s: %s(%q): %v", call.Range(), call.Name, p, err)
							continue
						}
						if call.Name == "templatefile" {
							checkTemplateVars(t, call, p)
						}
					}
				}
			})
		})
	}
}

func moduleSource(t *testing.T, call *hclsyntax.Block) string {
	t.Helper()
	a, ok := call.Body.Attributes["source"]
	if !ok {
		t.Fatalf("module %s has no source", call.Labels[0])
	}
	v, diags := a.Expr.Value(nil)
	if diags.HasErrors() {
		t.Fatalf("module %s: source must be a literal string: %s", call.Labels[0], diags.Error())
	}
	return v.AsString()
}

// fileCalls finds file() and templatefile() calls anywhere in body.
func fileCalls(body *hclsyntax.Body) []*hclsyntax.FunctionCallExpr {
	var out []*hclsyntax.FunctionCallExpr
	_ = hclsyntax.VisitAll(body, func(n hclsyntax.Node) hcl.Diagnostics {
		if c, ok := n.(*hclsyntax.FunctionCallExpr); ok && (c.Name == "file" || c.Name == "templatefile") {
			out = append(out, c)
		}
		return nil
	})
	return out
}

// pathArg evaluates a file()/templatefile() path argument with path.module
// and path.root set to the module directory.
func pathArg(t *testing.T, call *hclsyntax.FunctionCallExpr, dir string) string {
	t.Helper()
	v, diags := call.Args[0].Value(pathContext(dir))
	if diags.HasErrors() {
		t.Fatalf("%s: %s path must be built from path.module/path.root and literals: %s", call.Range(), call.Name, diags.Error())
	}
	return v.AsString()
}

// isIterator reports whether name is a for-expression or dynamic-block
// iterator somewhere in body, which is not a resource reference.
func isIterator(body *hclsyntax.Body, name string) bool {
	var found bool
	_ = hclsyntax.VisitAll(body, func(n hclsyntax.Node) hcl.Diagnostics {
		if fe, ok := n.(*hclsyntax.ForExpr); ok && (fe.KeyVar == name || fe.ValVar == name) {
			found = true
		}
		return nil
	})
	return found
}

// checkTemplateVars parses a templatefile() template as Terraform does and
// checks that the call passes every variable the template uses.
func checkTemplateVars(t *testing.T, call *hclsyntax.FunctionCallExpr, path string) {
	t.Helper()
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, diags := hclsyntax.ParseTemplate(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		t.Errorf("%s does not parse as a Terraform template: %s", path, diags.Error())
		return
	}
	if len(call.Args) != 2 {
		t.Errorf("%s: templatefile takes (path, vars)", call.Range())
		return
	}
	obj, ok := call.Args[1].(*hclsyntax.ObjectConsExpr)
	if !ok {
		t.Errorf("%s: pass templatefile vars as an object literal so they can be checked", call.Range())
		return
	}
	passed := map[string]bool{}
	for _, item := range obj.Items {
		k, diags := item.KeyExpr.Value(nil)
		if !diags.HasErrors() {
			passed[k.AsString()] = true
		}
	}
	for _, tr := range tmpl.Variables() {
		if !passed[tr.RootName()] {
			t.Errorf("%s uses ${%s}, which %s does not pass", path, tr.RootName(), call.Range())
		}
	}
}
