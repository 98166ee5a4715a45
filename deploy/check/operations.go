package check

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// iamAction is what IAM calls an action: "service:Operation".
var iamAction = regexp.MustCompile(`^[a-z0-9-]+:[A-Za-z0-9]+$`)

// CloudOperations returns the AWS operations that funcName in the Go package
// at dir returns, as IAM actions. The package is read from source because
// Go's internal/ rule keeps deploy/ from importing the coordinator's cloud
// package; every string constant or literal that the function (or a
// package function it calls) mentions and that looks like an IAM action
// counts, so the list may be built in any style.
func CloudOperations(dir, funcName string) ([]string, error) {
	fset := token.NewFileSet()
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	consts := map[string]string{}
	funcs := map[string]*ast.FuncDecl{}
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return nil, err
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil {
					funcs[d.Name.Name] = d
				}
			case *ast.GenDecl:
				if d.Tok != token.CONST {
					continue
				}
				for _, s := range d.Specs {
					vs := s.(*ast.ValueSpec)
					for i, name := range vs.Names {
						if i < len(vs.Values) {
							if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
								if v, err := strconv.Unquote(lit.Value); err == nil {
									consts[name.Name] = v
								}
							}
						}
					}
				}
			}
		}
	}
	fn, ok := funcs[funcName]
	if !ok {
		return nil, fmt.Errorf("%s has no function %s", dir, funcName)
	}
	found := map[string]bool{}
	seen := map[string]bool{}
	var walk func(*ast.FuncDecl)
	walk = func(fn *ast.FuncDecl) {
		if seen[fn.Name.Name] {
			return
		}
		seen[fn.Name.Name] = true
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.Ident:
				if v, ok := consts[n.Name]; ok && iamAction.MatchString(v) {
					found[v] = true
				}
				if callee, ok := funcs[n.Name]; ok {
					walk(callee)
				}
			case *ast.BasicLit:
				if v, err := strconv.Unquote(n.Value); err == nil && n.Kind == token.STRING && iamAction.MatchString(v) {
					found[v] = true
				}
			}
			return true
		})
	}
	walk(fn)
	if len(found) == 0 {
		return nil, fmt.Errorf("%s.%s mentions no IAM action (service:Operation)", dir, funcName)
	}
	out := make([]string, 0, len(found))
	for op := range found {
		out = append(out, op)
	}
	sort.Strings(out)
	return out, nil
}
