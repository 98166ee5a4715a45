package raftls

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// TestOpenSSLClient connects to a layer with `openssl s_client`, a TLS
// client we did not write: a server certificate completes a verified TLS 1.3
// handshake; an agent certificate is refused by the layer.
func TestOpenSSLClient(t *testing.T) {
	bin, err := exec.LookPath("openssl")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl not on PATH")
		}
		t.Skip("openssl not on PATH; install it to run this test")
	}
	c := newCerts(t)
	layer := listen(t, c.source(t, tlsconf.RoleServer, "n1"))
	for _, tt := range []struct {
		role      tlsconf.Role
		layerWant string // "" = the layer accepts
	}{
		{tlsconf.RoleServer, ""},
		{tlsconf.RoleAgent, "has role agent, want server"},
	} {
		t.Run(string(tt.role), func(t *testing.T) {
			accepted := make(chan error, 1)
			go func() {
				conn, err := layer.Accept()
				if err != nil {
					accepted <- err
					return
				}
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(20 * time.Second))
				_, err = conn.Write([]byte("hi\n")) // runs the handshake
				accepted <- err
			}()
			cert, key := c.files(t, tt.role, "openssl")
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "s_client", "-connect", layer.Addr().String(), "-tls1_3",
				"-CAfile", c.caFile, "-verify_return_error", "-cert", cert, "-key", key)
			cmd.Stdin = strings.NewReader("")
			out, _ := cmd.CombinedOutput()
			// openssl verifies the layer's server certificate either way.
			if !strings.Contains(string(out), "Verify return code: 0 (ok)") || !strings.Contains(string(out), "TLSv1.3") {
				t.Fatalf("openssl s_client did not verify a TLS 1.3 server:\n%s", out)
			}
			select {
			case err := <-accepted:
				if tt.layerWant == "" && err != nil {
					t.Fatalf("layer refused openssl's server certificate: %v", err)
				}
				if tt.layerWant != "" && (err == nil || !strings.Contains(err.Error(), tt.layerWant)) {
					t.Fatalf("layer: %v, want %q", err, tt.layerWant)
				}
			case <-ctx.Done():
				t.Fatal("layer did not finish the handshake")
			}
		})
	}
}
