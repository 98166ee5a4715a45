package devpki

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"

	"github.com/shoal-dev/shoal/proto/rpc"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// Roles a certificate can have (the URI SAN spiffe://shoal/<role>/<name>).
const (
	RoleServer   = "server"
	RoleLB       = "lb"
	RoleAgent    = "agent"
	RoleOperator = "operator"
)

// The environment variables the coordinator CLI reads its credentials from.
const (
	EnvCACert     = "SHOAL_CACERT"
	EnvClientCert = "SHOAL_CLIENT_CERT"
	EnvClientKey  = "SHOAL_CLIENT_KEY"
	EnvToken      = "SHOAL_TOKEN"
)

// cmdTimeout bounds each CLI run: they work on local files or one RPC.
const cmdTimeout = 30 * time.Second

// PKI is a CA on disk and the coordinator binary that issues from it.
type PKI struct {
	// Dir holds the CA and every certificate issued.
	Dir string
	// CACert and CAKey are the CA's files (shoal-ca.pem, shoal-ca-key.pem).
	CACert, CAKey string
	bin           string
}

// Pair is a certificate and its key.
type Pair struct {
	Cert, Key string
}

// New creates a CA in dir (made if missing) with `coordinatorBin tls ca
// create --out dir`.
func New(ctx context.Context, coordinatorBin, dir string) (*PKI, error) {
	if coordinatorBin == "" {
		return nil, errors.New("devpki: coordinator binary: required")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("devpki: dir: %w", err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("devpki: dir: %w", err)
	}
	p := &PKI{Dir: abs, CACert: filepath.Join(abs, "shoal-ca.pem"), CAKey: filepath.Join(abs, "shoal-ca-key.pem"), bin: coordinatorBin}
	if _, err := run(ctx, coordinatorBin, nil, "tls", "ca", "create", "--out", abs); err != nil {
		return nil, err
	}
	return p, nil
}

// Issue issues a certificate of role for name, with ips as IP SANs, by
// `tls cert create`, and returns its files.
func (p *PKI) Issue(ctx context.Context, role, name string, ips ...string) (Pair, error) {
	args := []string{"tls", "cert", "create", "--role", role, "--name", name,
		"--ca", p.CACert, "--ca-key", p.CAKey, "--out", p.Dir, "-o", "json"}
	for _, ip := range ips {
		args = append(args, "--ip", ip)
	}
	out, err := run(ctx, p.bin, nil, args...)
	if err != nil {
		return Pair{}, err
	}
	var files struct {
		Cert string `json:"cert_file"`
		Key  string `json:"key_file"`
	}
	if err := json.Unmarshal(out, &files); err != nil || files.Cert == "" || files.Key == "" {
		return Pair{}, fmt.Errorf("devpki: tls cert create --role %s --name %s: unexpected output %q (%v)", role, name, out, err)
	}
	return Pair{Cert: files.Cert, Key: files.Key}, nil
}

// Server issues a server certificate for node id, valid on loopback
// (IP SAN 127.0.0.1) as the README's walk-through issues them.
func (p *PKI) Server(ctx context.Context, id string) (Pair, error) {
	return p.Issue(ctx, RoleServer, id, "127.0.0.1")
}

// Creds are what a client of the control API presents: the CA bundle, an
// operator certificate, and a token (empty before ACLs are bootstrapped).
type Creds struct {
	CACert string
	Pair
	Token string
}

// Env is the SHOAL_* environment that makes the coordinator CLI use these
// credentials; the token's entry is left out while there is none.
func (c Creds) Env() []string {
	env := []string{EnvCACert + "=" + c.CACert, EnvClientCert + "=" + c.Cert, EnvClientKey + "=" + c.Key}
	if c.Token != "" {
		env = append(env, EnvToken+"="+c.Token)
	}
	return env
}

// Exports is Env as shell `export` lines, values quoted for sh.
func (c Creds) Exports() []string {
	var out []string
	for _, kv := range c.Env() {
		k, v, _ := strings.Cut(kv, "=")
		out = append(out, "export "+k+"="+ShellQuote(v))
	}
	return out
}

// ShellQuote quotes s for sh unless it is made of safe characters only.
func ShellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=,@+") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// DialOptions are the gRPC options of a client holding these credentials:
// mutual TLS verifying a server of cluster "shoal", and the token on every
// call.
func (c Creds) DialOptions() ([]grpc.DialOption, error) {
	cfg := tlsconf.DefaultConfig()
	cfg.CAFile, cfg.CertFile, cfg.KeyFile = c.CACert, c.Cert, c.Key
	src, err := tlsconf.NewSource(cfg)
	if err != nil {
		return nil, fmt.Errorf("devpki: client credentials: %w", err)
	}
	opts := []grpc.DialOption{tlsconf.DialOption(tlsconf.ClientConfig(src))}
	if c.Token != "" {
		opts = append(opts, rpc.WithToken(c.Token, false))
	}
	return opts, nil
}

// Token is `acl bootstrap -o json` and `acl token create -o json`.
type Token struct {
	AccessorID string `json:"accessor_id"`
	Name       string `json:"name"`
	Policy     string `json:"policy"`
	Secret     string `json:"secret"`
}

// BootstrapACL runs `acl bootstrap -o json` against addr with c's
// certificate and returns the management token. It works once per
// cluster; a second call fails.
func BootstrapACL(ctx context.Context, coordinatorBin, addr string, c Creds) (Token, error) {
	c.Token = ""
	out, err := run(ctx, coordinatorBin, c.Env(), "--address", addr, "acl", "bootstrap", "-o", "json")
	if err != nil {
		return Token{}, err
	}
	var tok Token
	if err := json.Unmarshal(out, &tok); err != nil || tok.Secret == "" {
		return Token{}, fmt.Errorf("devpki: acl bootstrap: no secret in %q (%v)", out, err)
	}
	return tok, nil
}

// Environ is this process's environment without the SHOAL_* credentials
// and address a developer's shell may carry, so that only what a caller
// passes on reaches a child.
func Environ() []string {
	var env []string
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case EnvCACert, EnvClientCert, EnvClientKey, EnvToken, "SHOAL_ADDR":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// run runs bin with args (and env added to this process's) in its own
// process group, bounded by cmdTimeout, and returns its standard output;
// an error carries its standard error.
func run(ctx context.Context, bin string, env []string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("%s %s: %w: %s", filepath.Base(bin), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.Bytes(), nil
}
