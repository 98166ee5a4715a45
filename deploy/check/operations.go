package check

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// iamAction is what IAM calls an action: "service:Operation".
var iamAction = regexp.MustCompile(`^[a-z0-9-]+:[A-Za-z0-9]+$`)

// srcPkg is one Go package read from source: its string constants, its
// package-level functions, and each function's file's imports.
type srcPkg struct {
	consts  map[string]string
	funcs   map[string]*ast.FuncDecl
	imports map[*ast.FuncDecl]map[string]string // local name -> import path
}

// opsReader reads packages of one module by directory, each once.
type opsReader struct {
	root, module string
	pkgs         map[string]*srcPkg
}

// CloudOperations returns the AWS operations that funcName in the Go package
// at dir returns, as IAM actions. The package is read from source because
// Go's internal/ rule keeps deploy/ from importing the coordinator's
// packages; every string constant or literal that the function mentions, or
// that a function it calls mentions (in its own package or in another
// package of the same module, such as awscloud.ScalingOperations()), and
// that looks like an IAM action counts, so the list may be built in any
// style and from other packages' lists.
func CloudOperations(dir, funcName string) ([]string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	r := &opsReader{pkgs: map[string]*srcPkg{}}
	if r.root, r.module, err = findModule(dir); err != nil {
		return nil, err
	}
	p, err := r.load(dir)
	if err != nil {
		return nil, err
	}
	fn, ok := p.funcs[funcName]
	if !ok {
		return nil, fmt.Errorf("%s has no function %s", dir, funcName)
	}
	found := map[string]bool{}
	seen := map[*ast.FuncDecl]bool{}
	var walkErr error
	var walk func(p *srcPkg, fn *ast.FuncDecl)
	var inspect func(p *srcPkg, fn *ast.FuncDecl, n ast.Node)
	inspect = func(p *srcPkg, fn *ast.FuncDecl, root ast.Node) {
		ast.Inspect(root, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr:
				x, ok := n.X.(*ast.Ident)
				imp, isImport := "", false
				if ok {
					imp, isImport = p.imports[fn][x.Name]
				}
				if !isImport {
					// A field or method: only the receiver side can name
					// this package's constants.
					inspect(p, fn, n.X)
					return false
				}
				dir, inModule := r.dirOf(imp)
				if !inModule {
					return false
				}
				q, err := r.load(dir)
				if err != nil {
					walkErr = err
					return false
				}
				if v, ok := q.consts[n.Sel.Name]; ok && iamAction.MatchString(v) {
					found[v] = true
				}
				if callee, ok := q.funcs[n.Sel.Name]; ok {
					walk(q, callee)
				}
				return false
			case *ast.Ident:
				if v, ok := p.consts[n.Name]; ok && iamAction.MatchString(v) {
					found[v] = true
				}
				if callee, ok := p.funcs[n.Name]; ok {
					walk(p, callee)
				}
			case *ast.BasicLit:
				if v, err := strconv.Unquote(n.Value); err == nil && n.Kind == token.STRING && iamAction.MatchString(v) {
					found[v] = true
				}
			}
			return true
		})
	}
	walk = func(p *srcPkg, fn *ast.FuncDecl) {
		if seen[fn] || fn.Body == nil {
			return
		}
		seen[fn] = true
		inspect(p, fn, fn.Body)
	}
	walk(p, fn)
	if walkErr != nil {
		return nil, walkErr
	}
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

// findModule returns the directory holding the go.mod above dir, and its
// module path.
func findModule(dir string) (root, module string, err error) {
	for d := dir; ; d = filepath.Dir(d) {
		f, err := os.Open(filepath.Join(d, "go.mod"))
		if err == nil {
			defer f.Close()
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				if m, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "module "); ok {
					return d, strings.Trim(strings.TrimSpace(m), `"`), nil
				}
			}
			return "", "", fmt.Errorf("%s has no module line", filepath.Join(d, "go.mod"))
		}
		if filepath.Dir(d) == d {
			return "", "", fmt.Errorf("no go.mod above %s", dir)
		}
	}
}

// dirOf maps an import path of the module to its directory.
func (r *opsReader) dirOf(importPath string) (string, bool) {
	rel, ok := strings.CutPrefix(importPath, r.module+"/")
	if !ok {
		return "", false
	}
	return filepath.Join(r.root, filepath.FromSlash(rel)), true
}

func (r *opsReader) load(dir string) (*srcPkg, error) {
	if p, ok := r.pkgs[dir]; ok {
		return p, nil
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	p := &srcPkg{consts: map[string]string{}, funcs: map[string]*ast.FuncDecl{}, imports: map[*ast.FuncDecl]map[string]string{}}
	fset := token.NewFileSet()
	for _, fp := range paths {
		if strings.HasSuffix(fp, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, fp, nil, 0)
		if err != nil {
			return nil, err
		}
		imports := map[string]string{}
		for _, is := range f.Imports {
			ip, err := strconv.Unquote(is.Path.Value)
			if err != nil {
				return nil, err
			}
			name := path.Base(ip)
			if is.Name != nil {
				name = is.Name.Name
			}
			imports[name] = ip
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil {
					p.funcs[d.Name.Name] = d
					p.imports[d] = imports
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
									p.consts[name.Name] = v
								}
							}
						}
					}
				}
			}
		}
	}
	if len(p.funcs) == 0 && len(p.consts) == 0 {
		return nil, fmt.Errorf("%s holds no Go source", dir)
	}
	r.pkgs[dir] = p
	return p, nil
}

// awsCLICall matches an AWS CLI call in a shell script: service, operation.
var awsCLICall = regexp.MustCompile(`\baws ([a-z0-9-]+) ([a-z0-9-]+)\b`)

// ScriptOperations returns the AWS operations a shell script makes through
// the AWS CLI, as IAM actions: `aws ssm get-parameter` is ssm:GetParameter,
// and --with-decryption on it adds kms:Decrypt (SSM decrypts a SecureString
// with the caller's permission on its key). Comment lines do not count.
func ScriptOperations(path string) ([]string, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	found := map[string]bool{}
	for _, line := range strings.Split(string(src), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, m := range awsCLICall.FindAllStringSubmatch(line, -1) {
			var op strings.Builder
			for _, w := range strings.Split(m[2], "-") {
				op.WriteString(strings.ToUpper(w[:1]) + w[1:])
			}
			svc := m[1]
			if svc == "s3api" {
				svc = "s3" // the CLI's low-level S3 commands are IAM's s3 actions
			}
			found[svc+":"+op.String()] = true
			if m[1] == "ssm" && strings.Contains(line, "--with-decryption") {
				found["kms:Decrypt"] = true
			}
		}
	}
	if len(found) == 0 {
		return nil, fmt.Errorf("%s makes no AWS CLI call", path)
	}
	out := make([]string, 0, len(found))
	for op := range found {
		out = append(out, op)
	}
	sort.Strings(out)
	return out, nil
}
