package cli

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestServeRejectsBadConfig(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"alarm interval above 10s", []string{"serve", "--addr", "127.0.0.1:0", "--alarm-interval", "1m"}, "alarm-interval"},
		{"non-loopback instance prefix", []string{"serve", "--addr", "127.0.0.1:0", "--instance-ip-prefix", "10.1.2"}, "instance-ip-prefix"},
		{"iid-cert-out is a directory", []string{"serve", "--addr", "127.0.0.1:0", "--iid-cert-out", "/tmp/"}, "iid-cert-out"},
		{"iid-cert-out in a missing directory", []string{"serve", "--addr", "127.0.0.1:0", "--iid-cert-out", "/nonexistent-shoal/iid.pem"}, "iid-cert-out"},
		{"bad log level", []string{"serve", "--log-level", "loud"}, "log-level"},
		{"negative warm boot delay", []string{"serve", "--addr", "127.0.0.1:0", "--warm-boot-delay", "-1s"}, "warm-boot-delay"},
		{"unknown flag", []string{"serve", "--region", "eu-west-1"}, "unknown flag"},
		{"positional argument", []string{"serve", "extra"}, "unknown command"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := Main(context.Background(), c.args, &out, &errb, func(string) string { return "" }); code != 1 {
				t.Fatalf("exit code %d, want 1", code)
			}
			if !strings.Contains(errb.String(), c.want) {
				t.Fatalf("stderr %q does not mention %q", errb.String(), c.want)
			}
		})
	}
}

// TestServeStopsWhenContextEnds: the end of ctx (SIGTERM in main) is a
// clean stop, exit 0, after the endpoint was announced.
func TestServeStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--log-level", "error"}, &out, &errb, func(string) string { return "" })
	}()
	cancel()
	select {
	case code := <-done:
		if code != 0 || !strings.Contains(out.String(), "listening on http://127.0.0.1:") {
			t.Fatalf("exit %d, stdout %q, stderr %q; want 0 after announcing the endpoint", code, out.String(), errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return within 10s of its context ending")
	}
}

// TestServeWritesIIDCert: --iid-cert-out holds the certificate once serve
// has announced itself, so a script can start the coordinator right after.
func TestServeWritesIIDCert(t *testing.T) {
	out := filepath.Join(t.TempDir(), "localcloud-iid.pem")
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, errb bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--log-level", "error", "--iid-cert-out", out}, &stdout, &errb, func(string) string { return "" })
	}()
	cancel()
	select {
	case code := <-done:
		if code != 0 || !strings.Contains(stdout.String(), "listening on") {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout.String(), errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return within 10s of its context ending")
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		t.Fatalf("%s is not a PEM certificate: %q", out, b)
	}
	if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v, want 0644", st.Mode().Perm())
	}
}
