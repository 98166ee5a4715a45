package cli

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/shoal-dev/shoal/coordinator/internal/acl"
	"github.com/shoal-dev/shoal/coordinator/internal/authz"
	"github.com/shoal-dev/shoal/coordinator/internal/cluster"
	"github.com/shoal-dev/shoal/coordinator/internal/cluster/clustertest"
	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	"github.com/shoal-dev/shoal/coordinator/internal/pki"
	"github.com/shoal-dev/shoal/coordinator/internal/server"
	"github.com/shoal-dev/shoal/coordinator/internal/view"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// startNodeWith is startNode with the server's config changed by tweak; it
// returns the node too.
func startNodeWith(t *testing.T, tweak func(n *cluster.Node, c *server.Config)) (string, *cluster.Node) {
	t.Helper()
	tc := clustertest.Make(t, 1, clustertest.Options{
		TCP:    true,
		Config: func(_ int, c *cluster.Config) { c.NodeID = "n1" },
		Serve: func(t testing.TB, n *cluster.Node, lis net.Listener) func() {
			cfg := server.Config{Node: n, Logger: clustertest.Quiet()}
			if tweak != nil {
				tweak(n, &cfg)
			}
			srv, err := server.New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			go func() { _ = srv.Serve(lis) }()
			return func() { srv.Stop(time.Second) }
		},
	})
	return tc.Nodes[0].RPCAddr(), tc.Nodes[0]
}

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestCredentialFlagsWinOverEnvironment(t *testing.T) {
	env := envOf(map[string]string{EnvCACert: "env-ca.pem", EnvClientCert: "env-cert.pem", EnvClientKey: "env-key.pem", EnvToken: "env-token"})
	for _, tc := range []struct {
		name string
		args []string
		want creds
	}{
		{"environment", nil, creds{"env-ca.pem", "env-cert.pem", "env-key.pem", "env-token"}},
		{"flags", []string{"--ca-cert", "f-ca.pem", "--client-cert", "f-cert.pem", "--client-key", "f-key.pem", "--token", "f-token"}, creds{"f-ca.pem", "f-cert.pem", "f-key.pem", "f-token"}},
		{"one flag", []string{"--token", "f-token"}, creds{"env-ca.pem", "env-cert.pem", "env-key.pem", "f-token"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c creds
			cmd := &cobra.Command{}
			c.register(cmd, env)
			if err := cmd.PersistentFlags().Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			if c != tc.want {
				t.Fatalf("creds = %+v, want %+v", c, tc.want)
			}
		})
	}
}

// authLog records the authorization header of each call a server got.
type authLog struct {
	mu   sync.Mutex
	last string
}

func (l *authLog) option() grpc.ServerOption {
	return grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		l.mu.Lock()
		l.last = strings.Join(md.Get("authorization"), ",")
		l.mu.Unlock()
		return h(ctx, req)
	})
}

func (l *authLog) get() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last
}

func TestTokenIsSent(t *testing.T) {
	var log authLog
	addr, _ := startNodeWith(t, func(_ *cluster.Node, c *server.Config) { c.GRPCOptions = []grpc.ServerOption{log.option()} })
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"none", nil, nil, ""},
		{"environment", map[string]string{EnvToken: "env-token"}, nil, "Bearer env-token"},
		{"flag wins", map[string]string{EnvToken: "env-token"}, []string{"--token", "flag-token"}, "Bearer flag-token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, e := runEnv(t, envOf(tc.env), append([]string{"status", "--address", addr}, tc.args...)...); e != "" {
				t.Fatal(e)
			}
			if got := log.get(); got != tc.want {
				t.Fatalf("authorization = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestACLAndIdentityCommands(t *testing.T) {
	addr, node := startNodeWith(t, nil)
	mustRun := func(args ...string) string {
		t.Helper()
		out, e := run(t, addr, args...)
		if e != "" {
			t.Fatalf("%v: %s", args, e)
		}
		return out
	}

	out := mustRun("acl", "bootstrap", "-o", "json")
	var keys map[string]string
	if err := json.Unmarshal([]byte(out), &keys); err != nil {
		t.Fatalf("bootstrap JSON %q: %v", out, err)
	}
	for _, k := range []string{"name", "policy", "secret", "accessor_id"} {
		if keys[k] == "" {
			t.Errorf("bootstrap JSON lacks %q: %s", k, out)
		}
	}
	if keys["name"] != "bootstrap" || keys["policy"] != "admin" || acl.CheckSecret(keys["secret"]) != nil {
		t.Fatalf("bootstrap JSON = %s", out)
	}

	var made view.NewToken
	out = mustRun("acl", "token", "create", "--name", "ops-alice", "--policy", "operate", "--ttl", "2h", "-o", "json")
	if err := json.Unmarshal([]byte(out), &made); err != nil || made.Name != "ops-alice" || made.Policy != "operate" || acl.CheckSecret(made.Secret) != nil || made.ExpiresAt == "" {
		t.Fatalf("create JSON = %s (%v)", out, err)
	}
	created, _ := time.Parse(time.RFC3339, made.CreatedAt)
	expires, _ := time.Parse(time.RFC3339, made.ExpiresAt)
	if expires.Sub(created) != 2*time.Hour {
		t.Fatalf("created %s, expires %s: want 2h apart", made.CreatedAt, made.ExpiresAt)
	}

	text := mustRun("acl", "token", "create", "--name", "ci", "--policy", "read")
	for _, want := range []string{"name:", "ci", "policy:", "read", "expires:", "never", "secret:", "shoal_", "export SHOAL_TOKEN=shoal_"} {
		if !strings.Contains(text, want) {
			t.Errorf("create text lacks %q:\n%s", want, text)
		}
	}

	raw := mustRun("acl", "token", "list", "-o", "json")
	var list []view.Token
	if err := json.Unmarshal([]byte(raw), &list); err != nil || len(list) != 3 || list[0].Name != "bootstrap" || list[1].Name != "ci" || list[2].Name != "ops-alice" || list[2].Policy != "operate" {
		t.Fatalf("list JSON = %s (%v)", raw, err)
	}
	if strings.Contains(raw, "secret") || strings.Contains(raw, made.Secret) {
		t.Fatalf("list shows secrets: %s", raw)
	}
	if tbl := mustRun("acl", "token", "list"); !strings.Contains(tbl, "ACCESSOR_ID") || !strings.Contains(tbl, made.AccessorID) || !strings.Contains(tbl, "never") {
		t.Fatalf("list table:\n%s", tbl)
	}

	if out := mustRun("acl", "token", "delete", made.AccessorID); out != "deleted token "+made.AccessorID+"\n" {
		t.Fatalf("delete printed %q", out)
	}

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"bootstrap twice", []string{"acl", "bootstrap"}, "ACLs are already bootstrapped"},
		{"unknown policy", []string{"acl", "token", "create", "--name", "x", "--policy", "root"}, `policy: unknown value "root" (want one of admin, operate, read)`},
		{"no name", []string{"acl", "token", "create", "--policy", "read"}, "name: required"},
		{"no policy", []string{"acl", "token", "create", "--name", "x"}, "policy: required"},
		{"short ttl", []string{"acl", "token", "create", "--name", "x", "--policy", "read", "--ttl", "5s"}, "ttl (5s): shorter than 1m0s"},
		{"bad name", []string{"acl", "token", "create", "--name", "a/b", "--policy", "read"}, `name ("a/b")`},
		{"deleted", []string{"acl", "token", "delete", made.AccessorID}, "unknown accessor id"},
		{"no accessor", []string{"acl", "token", "delete"}, "ACCESSOR_ID: required"},
		{"no enrollment", []string{"instances", "reset-identity", "i-0123456789abcdef0"}, `instance "i-0123456789abcdef0": no enrollment recorded`},
		{"no instance", []string{"instances", "reset-identity"}, "ID: required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, e := run(t, addr, tc.args...)
			if !strings.Contains(e, tc.want) {
				t.Fatalf("error %q, want it to contain %q", e, tc.want)
			}
		})
	}

	for i, id := range []string{"i-0123456789abcdef0", "i-0123456789abcdef1"} {
		r, _, err := node.Apply(t.Context(), fsm.IdentityEnroll(fsm.Identity{InstanceID: id, NonceSHA256: strings.Repeat("ab", 32), PendingTimeMS: int64(i + 1)}).Encode())
		if err != nil || r.Error() != nil {
			t.Fatalf("enroll %s: %v, %v", id, err, r.Error())
		}
	}
	if out := mustRun("instances", "reset-identity", "i-0123456789abcdef0"); !strings.HasPrefix(out, "reset the identity of i-0123456789abcdef0") {
		t.Fatalf("reset printed %q", out)
	}
	if out := mustRun("instances", "reset-identity", "i-0123456789abcdef1", "-o", "json"); strings.TrimSpace(out) != "{\n  \"reset\": \"i-0123456789abcdef1\"\n}" {
		t.Fatalf("reset JSON %q", out)
	}
	if ids := node.FSM().Identities(); len(ids) != 0 {
		t.Fatalf("identities after reset: %v", ids)
	}
	// A plain `instances FLEET` still lists.
	if _, e := run(t, addr, "instances", "web"); !strings.Contains(e, "unknown fleet") {
		t.Fatalf("instances web: %q", e)
	}
}

func TestStatusShowsInsecure(t *testing.T) {
	for _, insecure := range []bool{false, true} {
		addr, _ := startNodeWith(t, func(_ *cluster.Node, c *server.Config) { c.Insecure = insecure })
		text, e := run(t, addr, "status")
		if e != "" {
			t.Fatal(e)
		}
		if got := strings.Contains(text, "insecure: true"); got != insecure {
			t.Errorf("insecure %v: text shows it %v:\n%s", insecure, got, text)
		}
		js, _ := run(t, addr, "status", "-o", "json")
		var st view.Status
		if err := json.Unmarshal([]byte(js), &st); err != nil || st.Insecure != insecure {
			t.Errorf("insecure %v: JSON %s (%v)", insecure, js, err)
		}
	}
}

// pkiFiles makes a CA, a server certificate for n1 and an operator
// certificate for alice in dir.
func pkiFiles(t *testing.T, dir string) (ca, srvCert, srvKey, opCert, opKey string) {
	t.Helper()
	c, err := pki.NewCA(pki.CARequest{Cluster: tlsconf.DefaultCluster, Validity: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	issue := func(role tlsconf.Role, name string) (string, string) {
		cert, key, err := c.Issue(pki.LeafRequest{Identity: tlsconf.Identity{Cluster: tlsconf.DefaultCluster, Role: role, Name: name}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Validity: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		return write(name+".pem", cert), write(name+"-key.pem", key)
	}
	ca = write("ca.pem", c.CertPEM())
	srvCert, srvKey = issue(tlsconf.RoleServer, "n1")
	opCert, opKey = issue(tlsconf.RoleOperator, "alice")
	return
}

// TestTLSAndTokens runs the CLI against a node that serves mutual TLS with
// the real authorizer, as serve does without --insecure.
func TestTLSAndTokens(t *testing.T) {
	ca, srvCert, srvKey, opCert, opKey := pkiFiles(t, t.TempDir())
	src, err := tlsconf.NewSource(tlsconf.Config{CAFile: ca, CertFile: srvCert, KeyFile: srvKey, Cluster: tlsconf.DefaultCluster})
	if err != nil {
		t.Fatal(err)
	}
	tlsCfg, err := tlsconf.ServerConfig(src, tlsconf.ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := startNodeWith(t, func(n *cluster.Node, c *server.Config) {
		a, err := authz.New(authz.DefaultConfig(), authz.Deps{Tokens: n.FSM(), Denied: authz.NewDeniedCounter(), Logger: clustertest.Quiet(), Now: time.Now})
		if err != nil {
			t.Fatal(err)
		}
		c.GRPCOptions = append(a.ServerOptions(), tlsconf.ServerOption(tlsCfg))
	})
	creds := map[string]string{EnvCACert: ca, EnvClientCert: opCert, EnvClientKey: opKey}
	with := func(m map[string]string, kv ...string) func(string) string {
		out := map[string]string{}
		for k, v := range m {
			out[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			out[kv[i]] = kv[i+1]
		}
		return envOf(out)
	}
	runAs := func(env func(string) string, args ...string) (string, string) {
		t.Helper()
		return runEnv(t, env, append(args, "--address", addr, "--timeout", "5s")...)
	}

	clustertest.Step(t, "plaintext CLI", func() {
		_, e := runAs(noEnv, "status")
		if want := "the coordinator at " + addr + " speaks TLS: set SHOAL_CACERT (and SHOAL_CLIENT_CERT/SHOAL_CLIENT_KEY, SHOAL_TOKEN)"; e != want {
			t.Fatalf("error %q, want %q", e, want)
		}
	})
	clustertest.Step(t, "no client certificate", func() {
		_, e := runAs(envOf(map[string]string{EnvCACert: ca}), "status")
		if !strings.Contains(e, "requires a client certificate; SHOAL_CLIENT_CERT is not set") {
			t.Fatalf("error %q", e)
		}
	})
	clustertest.Step(t, "certificate without key", func() {
		_, e := runAs(envOf(map[string]string{EnvCACert: ca, EnvClientCert: opCert}), "status")
		if !strings.Contains(e, "client-key: required with client-cert") {
			t.Fatalf("error %q", e)
		}
	})
	clustertest.Step(t, "status before bootstrap", func() {
		if out, e := runAs(envOf(creds), "status", "-o", "json"); e != "" || !strings.Contains(out, `"leader_id": "n1"`) {
			t.Fatalf("status: %q, %q", out, e)
		}
		if _, e := runAs(envOf(creds), "fleet", "list"); !strings.Contains(e, "ACLs are not bootstrapped; run `shoal-coordinator acl bootstrap` first") {
			t.Fatalf("fleet list before bootstrap: %q", e)
		}
	})

	var boot view.NewToken
	out, e := runAs(envOf(creds), "acl", "bootstrap", "-o", "json")
	if err := json.Unmarshal([]byte(out), &boot); e != "" || err != nil {
		t.Fatalf("bootstrap: %q, %q, %v", out, e, err)
	}
	admin := with(creds, EnvToken, boot.Secret)

	if _, e := runAs(envOf(creds), "scale", "web", "--desired", "2"); e != "this command needs an operate token; SHOAL_TOKEN is not set" {
		t.Fatalf("scale without a token: %q", e)
	}
	if _, e := runAs(admin, "fleet", "create", "web", "--asg", "web-asg", "--max", "4"); e != "" {
		t.Fatal(e)
	}
	var reader view.NewToken
	out, e = runAs(admin, "acl", "token", "create", "--name", "ci", "--policy", "read", "-o", "json")
	if err := json.Unmarshal([]byte(out), &reader); e != "" || err != nil {
		t.Fatalf("create: %q, %q, %v", out, e, err)
	}
	// --token wins over SHOAL_TOKEN: the read token may not delete.
	if _, e := runAs(admin, "fleet", "delete", "web", "--token", reader.Secret); e != `token "ci" has policy read; DeleteFleet needs admin` {
		t.Fatalf("delete with a read token: %q", e)
	}
	if _, e := runAs(admin, "scale", "web", "--desired", "2"); e != "" {
		t.Fatal(e)
	}
	var ds []view.Decision
	out, e = runAs(admin, "decisions", "web", "-o", "json")
	if err := json.Unmarshal([]byte(out), &ds); e != "" || err != nil || len(ds) != 1 || ds[0].Actor != "bootstrap" {
		t.Fatalf("decisions: %q, %q, %v; want one by actor bootstrap", out, e, err)
	}
	if _, e := runAs(admin, "instances", "reset-identity", "i-0123456789abcdef0"); !strings.Contains(e, "no enrollment recorded") {
		t.Fatalf("reset-identity: %q", e)
	}
}

// TestTLSCLIAgainstPlaintextNode: a CLI with a CA against an --insecure
// node says the node speaks plaintext.
func TestTLSCLIAgainstPlaintextNode(t *testing.T) {
	ca, _, _, opCert, opKey := pkiFiles(t, t.TempDir())
	addr := startNode(t)
	_, e := runEnv(t, envOf(map[string]string{EnvCACert: ca, EnvClientCert: opCert, EnvClientKey: opKey}), "status", "--address", addr, "--timeout", "5s")
	if want := "the coordinator at " + addr + " speaks plaintext (an --insecure cluster): unset SHOAL_CACERT and --ca-cert"; e != want {
		t.Fatalf("error %q, want %q", e, want)
	}
}
