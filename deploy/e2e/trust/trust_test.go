//go:build multiprocess

package trust

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/deploy/internal/sandbox"
	"github.com/shoal-dev/shoal/deploy/testkit"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

func start(t *testing.T, insecure bool) *sandbox.Sandbox {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	opts := sandbox.DefaultOptions()
	opts.BinDir, opts.Nodes, opts.BootDelay, opts.Insecure = testkit.BinDir(t), 1, 500*time.Millisecond, insecure
	sb, err := sandbox.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := sb.Close(); err != nil {
			t.Error(err)
		}
	})
	return sb
}

// cli runs the coordinator CLI against addr with exactly env.
func cli(t *testing.T, sb *sandbox.Sandbox, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(testkit.BinDir(t), "shoal-coordinator"), append([]string{"--address", sb.RPCAddrs()[0]}, args...)...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// TestSandboxRunsSecure: the default sandbox serves mutual TLS with ACLs,
// and its fleet's agents stream with certificates they enrolled for.
func TestSandboxRunsSecure(t *testing.T) {
	sb := start(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if !sb.Secure() {
		t.Fatal("the default sandbox is not secure")
	}
	st, err := sb.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Insecure {
		t.Fatal("status says insecure: true")
	}

	// Refused: plaintext, no certificate, a certificate without a token.
	cc, err := rpc.Dial(sb.RPCAddrs()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
	if _, err := shoalv1.NewControlServiceClient(cc).GetStatus(cctx, &shoalv1.GetStatusRequest{}); err == nil {
		t.Error("a plaintext GetStatus was answered")
	}
	ccancel()
	creds, _ := sb.Creds()
	noToken := creds
	noToken.Token = ""
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"no credentials", sb.Env(), ""},
		{"certificate without a token", append(sb.Env(), noToken.Env()...), "SHOAL_TOKEN"},
	} {
		out, err := cli(t, sb, tc.env, "status")
		if err == nil || !strings.Contains(out, tc.want) {
			t.Errorf("%s: status = %v, %q; want a refusal mentioning %q", tc.name, err, out, tc.want)
		}
	}
	if out, err := cli(t, sb, sb.CLIEnv(), "status"); err != nil {
		t.Fatalf("status with the sandbox's credentials: %v: %s", err, out)
	}
	// The exports `shoal-demo --hold` prints are all a fresh shell needs.
	script := strings.Join(sb.Exports(), "\n") + "\nexec " + filepath.Join(testkit.BinDir(t), "shoal-coordinator") + " status\n"
	tour := exec.CommandContext(ctx, "/bin/sh", "-c", script)
	tour.Env = testkit.Environ()
	if out, err := tour.CombinedOutput(); err != nil || !strings.Contains(string(out), "leader:") {
		t.Fatalf("status in a shell that ran the exports: %v: %s\nexports:\n%s", err, out, strings.Join(sb.Exports(), "\n"))
	}

	// A fleet instance enrolled: its agent keeps an agent certificate for
	// its own instance id, and it is in service (so its stream was accepted).
	if _, err := sb.RunGolden(ctx, 50); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Bootstrap(ctx, sandbox.Bootstrap{Min: 1, Max: 2}); err != nil {
		t.Fatal(err)
	}
	in, err := sb.WaitInService(ctx, "web", 1, 60*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	id := agentIdentity(t, filepath.Join(sb.Dir, "data", "agents", in[0].ID, "agent.pem"))
	if id.Role != tlsconf.RoleAgent || id.Name != in[0].ID {
		t.Fatalf("agent of %s holds a certificate for %s", in[0].ID, id)
	}
}

func agentIdentity(t *testing.T, file string) tlsconf.Identity {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("the agent kept no credentials: %v", err)
	}
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			t.Fatalf("%s holds no certificate", file)
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		id, err := tlsconf.ParseIdentity(c)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
}

// TestSandboxInsecureOption: Insecure is the one way to a plaintext
// sandbox, and it says so.
func TestSandboxInsecureOption(t *testing.T) {
	sb := start(t, true)
	if sb.Secure() || sb.CACert() != "" {
		t.Fatal("an insecure sandbox made a CA")
	}
	out, err := cli(t, sb, sb.Env(), "status", "-o", "json")
	if err != nil {
		t.Fatalf("plaintext status: %v: %s", err, out)
	}
	if !strings.Contains(out, `"insecure": true`) {
		t.Fatalf("status does not say insecure: %s", out)
	}
}
