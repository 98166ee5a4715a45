package sandbox

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"google.golang.org/grpc"

	"github.com/shoal-dev/shoal/deploy/internal/devpki"
	"github.com/shoal-dev/shoal/proto/rpc"
)

// LocalCloudRegion is the one region the local cloud models; the file
// naming its identity certificate says so, as the coordinators'
// --iid-trust expects (<region>-localcloud.pem).
const LocalCloudRegion = "us-east-1"

// OperatorName names the sandbox's operator certificate (its identity is
// spiffe://shoal/operator/<OperatorName>).
const OperatorName = "sandbox"

// security is a secure sandbox's trust: its CA, the certificates issued
// from it, and the operator's credentials once ACLs are bootstrapped.
type security struct {
	pki *devpki.PKI
	// iidCert is where the local cloud writes the certificate that
	// verifies its identity documents (the coordinators' --iid-trust).
	iidCert string
	lb      devpki.Pair
	// creds are the operator's; creds.Token is set by bootstrapACL and
	// never changes after Start.
	creds devpki.Creds
	token devpki.Token
}

// newSecurity creates the CA and the LB's and operator's certificates in
// dir; the servers' come with their nodes.
func newSecurity(ctx context.Context, coordinatorBin, dir string) (*security, error) {
	p, err := devpki.New(ctx, coordinatorBin, dir)
	if err != nil {
		return nil, err
	}
	sec := &security{pki: p, iidCert: filepath.Join(p.Dir, LocalCloudRegion+"-localcloud.pem")}
	if sec.lb, err = p.Issue(ctx, devpki.RoleLB, "lb"); err != nil {
		return nil, err
	}
	op, err := p.Issue(ctx, devpki.RoleOperator, OperatorName)
	if err != nil {
		return nil, err
	}
	sec.creds = devpki.Creds{CACert: p.CACert, Pair: op}
	return sec, nil
}

// bootstrapACL runs `acl bootstrap` once a node can commit it, and keeps
// the management token for every later CLI call. Only a refusal that
// says nothing was committed (no leader yet, a node still joining) is
// retried; a cluster already bootstrapped fails the start, since the
// token it printed then is lost.
func (s *Sandbox) bootstrapACL(ctx context.Context) error {
	bin := filepath.Join(s.opts.BinDir, "shoal-coordinator")
	var tok devpki.Token
	err := s.poll(ctx, "acl bootstrap", func(ctx context.Context) error {
		var last error
		for _, n := range s.Nodes() {
			t, err := devpki.BootstrapACL(ctx, bin, n.RPCAddr, s.sec.creds)
			if err == nil {
				tok = t
				return nil
			}
			if strings.Contains(err.Error(), "already") {
				return fmt.Errorf("%w: %v", errBootstrapped, err)
			}
			last = err
		}
		return last
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.sec.token, s.sec.creds.Token = tok, tok.Secret
	s.mu.Unlock()
	return nil
}

var errBootstrapped = fmt.Errorf("acl bootstrap: the cluster's ACLs were bootstrapped before this sandbox asked")

// Secure reports whether the sandbox runs with mTLS, enrollment and ACLs.
func (s *Sandbox) Secure() bool { return s.sec != nil }

// Creds are the operator's credentials: the CA bundle, the operator
// certificate and the management token. ok is false when Insecure.
func (s *Sandbox) Creds() (c devpki.Creds, ok bool) {
	if s.sec == nil {
		return devpki.Creds{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sec.creds, true
}

// CACert is the CA bundle every process trusts ("" when Insecure).
func (s *Sandbox) CACert() string {
	if s.sec == nil {
		return ""
	}
	return s.sec.pki.CACert
}

// PKI is the sandbox's CA, for a test that issues more certificates (nil
// when Insecure).
func (s *Sandbox) PKI() *devpki.PKI {
	if s.sec == nil {
		return nil
	}
	return s.sec.pki
}

// IIDTrust is the local cloud's identity certificate, as the coordinators
// trust it ("" when Insecure).
func (s *Sandbox) IIDTrust() string {
	if s.sec == nil {
		return ""
	}
	return s.sec.iidCert
}

// CLIEnv is the environment of a coordinator CLI call: Env plus, when
// secure, the operator's SHOAL_CACERT, SHOAL_CLIENT_CERT,
// SHOAL_CLIENT_KEY and SHOAL_TOKEN.
func (s *Sandbox) CLIEnv() []string {
	env := s.Env()
	if c, ok := s.Creds(); ok {
		env = append(env, c.Env()...)
	}
	return env
}

// Dial connects to the coordinator at addr as the CLI does: mutual TLS
// with the operator's certificate and the management token, or plaintext
// when Insecure.
func (s *Sandbox) Dial(addr string) (*grpc.ClientConn, error) {
	c, ok := s.Creds()
	if !ok {
		return rpc.Dial(addr)
	}
	opts, err := c.DialOptions()
	if err != nil {
		return nil, err
	}
	return rpc.Dial(addr, opts...)
}

// Exports are the shell lines that point a coordinator CLI in another
// shell at this sandbox: SHOAL_ADDR, the operator's SHOAL_* credentials
// when secure, and the local cloud's AWS_* settings.
func (s *Sandbox) Exports() []string {
	lines := []string{"export SHOAL_ADDR=" + s.RPCAddrs()[0]}
	if c, ok := s.Creds(); ok {
		lines = append(lines, c.Exports()...)
	}
	return append(lines, "export AWS_ENDPOINT_URL="+s.CloudURL+" AWS_REGION="+LocalCloudRegion+" AWS_ACCESS_KEY_ID=sandbox AWS_SECRET_ACCESS_KEY=sandbox")
}

// agentFlags are the golden agent's trust flags: the CA and a data
// directory per instance (the instance id comes from the local cloud's
// environment at boot), or --insecure.
func (s *Sandbox) agentFlags() string {
	dataDir := devpki.ShellQuote(filepath.Join(s.Dir, "data", "agents")) + "/$LOCALCLOUD_INSTANCE_ID"
	if s.sec == nil {
		return "--insecure --data-dir " + dataDir
	}
	return "--ca-cert " + devpki.ShellQuote(s.sec.pki.CACert) + " --data-dir " + dataDir
}
