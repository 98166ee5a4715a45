package tlsconf

import (
	"context"
	"crypto/tls"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{CAFile: "ca.pem", CertFile: "c.pem", KeyFile: "k.pem", Cluster: "shoal"}
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"ok", func(*Config) {}, ""},
		{"no cert is fine", func(c *Config) { c.CertFile, c.KeyFile = "", "" }, ""},
		{"no ca", func(c *Config) { c.CAFile = "" }, "ca-file: required"},
		{"key without cert", func(c *Config) { c.CertFile = "" }, "cert-file: required with key-file"},
		{"cert without key", func(c *Config) { c.KeyFile = "" }, "key-file: required with cert-file"},
		{"bad cluster", func(c *Config) { c.Cluster = "a b" }, `cluster ("a b")`},
		{"no cluster", func(c *Config) { c.Cluster = "" }, "cluster: required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.edit(&c)
			err := c.Validate()
			if (tt.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want %q", err, tt.want)
			}
		})
	}
	if DefaultConfig().Cluster != "shoal" {
		t.Error("default cluster is not shoal")
	}
}

func TestNewSourceRefuses(t *testing.T) {
	ca, other := newTestCA(t, "ca"), newTestCA(t, "other")
	good, goodKey := ca.leaf(t, leafOpts{uris: []string{"spiffe://shoal/server/n1"}})
	_, otherKey := ca.leaf(t, leafOpts{uris: []string{"spiffe://shoal/server/n2"}})
	foreign, foreignKey := other.leaf(t, leafOpts{uris: []string{"spiffe://shoal/server/n1"}})
	prod, prodKey := ca.leaf(t, leafOpts{uris: []string{"spiffe://prod/server/n1"}})
	anon, anonKey := ca.leaf(t, leafOpts{})
	tests := []struct {
		name              string
		bundle, cert, key []byte
		want              string
	}{
		{"key of another cert", ca.pem, good, otherKey, "private key does not match public key"},
		{"untrusted cert", ca.pem, foreign, foreignKey, "not trusted by ca-file"},
		{"other cluster", ca.pem, prod, prodKey, `is of cluster "prod", not "shoal"`},
		{"no identity", ca.pem, anon, anonKey, "exactly one URI SAN"},
		{"leaf in bundle", good, good, goodKey, "is not a CA"},
		{"key in bundle", append(ca.pem, goodKey...), good, goodKey, `unexpected PEM block "PRIVATE KEY"`},
		{"empty bundle", []byte("\n"), good, goodKey, "no PEM certificate found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewSource(files(t, t.TempDir(), tt.bundle, tt.cert, tt.key))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewSource() = %v, want %q", err, tt.want)
			}
		})
	}
	cfg := files(t, t.TempDir(), ca.pem, good, goodKey)
	cfg.CAFile += ".missing"
	if _, err := NewSource(cfg); err == nil || !strings.HasPrefix(err.Error(), "ca-file: ") {
		t.Fatalf("missing CA file: %v", err)
	}
}

func TestReload(t *testing.T) {
	ca := newTestCA(t, "ca")
	dir := t.TempDir()
	c1, k1 := ca.leaf(t, leafOpts{uris: []string{"spiffe://shoal/server/n1"}})
	cfg := files(t, dir, ca.pem, c1, k1)
	s, err := NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	first := s.Certificate()
	if id, ok := s.Identity(); !ok || id != (Identity{"shoal", RoleServer, "n1"}) {
		t.Fatalf("Identity() = %v, %v", id, ok)
	}
	if changed, err := s.Changed(); changed || err != nil {
		t.Fatalf("Changed() right after load = %v, %v", changed, err)
	}

	// A renewed certificate is picked up.
	c2, k2 := ca.leaf(t, leafOpts{uris: []string{"spiffe://shoal/server/n1"}})
	files(t, dir, ca.pem, c2, k2)
	if changed, err := s.Changed(); !changed || err != nil {
		t.Fatalf("Changed() after renewal = %v, %v", changed, err)
	}
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	second := s.Certificate()
	if second.Leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) == 0 {
		t.Fatal("Reload kept the old certificate")
	}

	// A broken write (certificate without its key yet) keeps the last good one.
	c3, _ := ca.leaf(t, leafOpts{uris: []string{"spiffe://shoal/server/n1"}})
	write(t, cfg.CertFile, c3)
	if err := s.Reload(); err == nil || !strings.Contains(err.Error(), "cert-file") {
		t.Fatalf("Reload with a mismatched key = %v", err)
	}
	if s.Certificate() != second {
		t.Fatal("a failed Reload replaced the certificate")
	}

	// A certificate may not change its identity under a running config.
	for _, uri := range []string{"spiffe://shoal/agent/n1", "spiffe://shoal/server/n2"} {
		c4, k4 := ca.leaf(t, leafOpts{uris: []string{uri}})
		files(t, dir, ca.pem, c4, k4)
		if err := s.Reload(); err == nil || !strings.Contains(err.Error(), "identity changed from spiffe://shoal/server/n1 to "+uri) {
			t.Fatalf("Reload with %s = %v", uri, err)
		}
		if s.Certificate() != second {
			t.Fatal("a refused identity change replaced the certificate")
		}
	}
}

func TestWatch(t *testing.T) {
	// Everything inside the bubble, so certificates are valid at its clock.
	synctest.Test(t, func(t *testing.T) {
		ca := newTestCA(t, "ca")
		dir := t.TempDir()
		c1, k1 := ca.leaf(t, leafOpts{uris: []string{"spiffe://shoal/lb/lb1"}})
		c2, k2 := ca.leaf(t, leafOpts{uris: []string{"spiffe://shoal/lb/lb1"}})
		c3, _ := ca.leaf(t, leafOpts{uris: []string{"spiffe://shoal/lb/lb1"}})
		cfg := files(t, dir, ca.pem, c1, k1)
		s, err := NewSource(cfg)
		if err != nil {
			t.Fatal(err)
		}
		first := s.Certificate()
		ctx, cancel := context.WithCancel(t.Context())
		reports := make(chan error, 10)
		done := make(chan struct{})
		go func() { s.Watch(ctx, 5*time.Second, func(err error) { reports <- err }); close(done) }()

		time.Sleep(12 * time.Second) // two ticks with nothing changed
		synctest.Wait()
		if len(reports) != 0 || s.Certificate() != first {
			t.Fatalf("reloaded without a change: %d reports", len(reports))
		}

		files(t, dir, ca.pem, c2, k2)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if err := <-reports; err != nil {
			t.Fatalf("reload: %v", err)
		}
		second := s.Certificate()
		if second == first || second.Leaf.SerialNumber.Cmp(first.Leaf.SerialNumber) == 0 {
			t.Fatal("Watch did not pick up the new certificate")
		}

		// A broken state is reported once and keeps the last good one.
		write(t, cfg.CertFile, c3)
		time.Sleep(15 * time.Second)
		synctest.Wait()
		if len(reports) != 1 {
			t.Fatalf("%d reports for one broken change, want 1", len(reports))
		}
		if err := <-reports; err == nil {
			t.Fatal("a mismatched key was reported as reloaded")
		}
		if s.Certificate() != second {
			t.Fatal("a broken change replaced the certificate")
		}

		// A missing file too is reported once, however long it lasts.
		if err := os.Remove(cfg.KeyFile); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if len(reports) != 1 {
			t.Fatalf("%d reports for one missing file, want 1", len(reports))
		}
		if err := <-reports; err == nil || !strings.HasPrefix(err.Error(), "key-file: ") {
			t.Fatalf("missing key reported as %v", err)
		}
		// Repaired: reloaded and reported as such.
		files(t, dir, ca.pem, c2, k2)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if err := <-reports; err != nil {
			t.Fatalf("repair reported %v", err)
		}

		cancel()
		<-done
	})
}

// TestWatchSeesACertificateAndKeyReplacedOneAfterTheOther replaces the
// certificate and then the key, as a deploy tool renaming each into place
// does, again and again under a fast Watch. Between the two renames the
// files do not match; Watch must not mistake the repaired pair for the
// broken one it just saw, and must end up on the last pair written.
func TestWatchSeesACertificateAndKeyReplacedOneAfterTheOther(t *testing.T) {
	ca := newTestCA(t, "ca")
	var certs, keys [2][]byte
	for i := range certs {
		certs[i], keys[i] = ca.leaf(t, leafOpts{uris: []string{"spiffe://shoal/server/n1"}})
	}
	cfg := files(t, t.TempDir(), ca.pem, certs[0], keys[0])
	s, err := NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { s.Watch(ctx, 50*time.Microsecond, nil); close(done) }()
	defer func() { cancel(); <-done }()

	// Each round waits for its pair, so each is a chance to catch the
	// mix-up, which would leave the old pair in use for good.
	for i := 1; i <= 200; i++ {
		write(t, cfg.CertFile, certs[i%2])
		write(t, cfg.KeyFile, keys[i%2])
		want, err := tls.X509KeyPair(certs[i%2], keys[i%2])
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for !s.Certificate().Leaf.Equal(want.Leaf) {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: Watch did not load the certificate and key written within 5s: it took the repaired pair for the broken one", i)
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
}
