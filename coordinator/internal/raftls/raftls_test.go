package raftls

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/shoal-dev/shoal/coordinator/internal/pki"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

type certs struct {
	dir    string
	ca     *pki.CA
	caFile string
}

func newCerts(t *testing.T) *certs {
	t.Helper()
	ca, err := pki.NewCA(pki.CARequest{Cluster: "shoal", Validity: 48 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, ca.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	return &certs{dir: dir, ca: ca, caFile: caFile}
}

// files issues a certificate for role/name and returns its file paths.
func (c *certs) files(t *testing.T, role tlsconf.Role, name string) (cert, key string) {
	t.Helper()
	certPEM, keyPEM, err := c.ca.Issue(pki.LeafRequest{Identity: tlsconf.Identity{Cluster: "shoal", Role: role, Name: name}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}, Validity: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	cert, key = filepath.Join(c.dir, string(role)+"-"+name+".pem"), filepath.Join(c.dir, string(role)+"-"+name+"-key.pem")
	if err := pki.WriteFiles(false, pki.Output{Path: cert, Data: certPEM, Mode: pki.CertMode}, pki.Output{Path: key, Data: keyPEM, Mode: pki.KeyMode}); err != nil {
		t.Fatal(err)
	}
	return cert, key
}

func (c *certs) source(t *testing.T, role tlsconf.Role, name string) *tlsconf.Source {
	t.Helper()
	cfg := tlsconf.DefaultConfig()
	cfg.CAFile = c.caFile
	cfg.CertFile, cfg.KeyFile = c.files(t, role, name)
	s, err := tlsconf.NewSource(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rawPair is a certificate as a plain tls.Certificate, for peers that do
// not go through tlsconf (which would refuse to build their configs).
func (c *certs) rawPair(t *testing.T, role tlsconf.Role, name string) tls.Certificate {
	t.Helper()
	cert, key := c.files(t, role, name)
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

func listen(t *testing.T, src *tlsconf.Source) *Layer {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Bind, cfg.Source = "127.0.0.1:0", src
	l, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// counter is an FSM that reports each applied entry.
type counter struct {
	mu      sync.Mutex
	applied [][]byte
	ch      chan string
}

func (f *counter) Apply(l *raft.Log) any {
	f.mu.Lock()
	f.applied = append(f.applied, l.Data)
	f.mu.Unlock()
	f.ch <- string(l.Data)
	return nil
}
func (f *counter) Snapshot() (raft.FSMSnapshot, error) { return nil, fmt.Errorf("not needed") }
func (f *counter) Restore(io.ReadCloser) error         { return fmt.Errorf("not needed") }

// TestCluster runs three raft nodes over real loopback TCP on the TLS layer:
// they elect a leader and replicate an entry to every node.
func TestCluster(t *testing.T) {
	c := newCerts(t)
	const n = 3
	layers := make([]*Layer, n)
	var servers []raft.Server
	for i := range layers {
		layers[i] = listen(t, c.source(t, tlsconf.RoleServer, fmt.Sprintf("n%d", i)))
		servers = append(servers, raft.Server{ID: raft.ServerID(fmt.Sprintf("n%d", i)), Address: raft.ServerAddress(layers[i].Addr().String())})
	}
	leaders := make(chan int, 3*n)
	fsms := make([]*counter, n)
	rafts := make([]*raft.Raft, n)
	for i, l := range layers {
		logger := hclog.New(&hclog.LoggerOptions{Name: fmt.Sprintf("n%d", i), Output: io.Discard})
		trans := raft.NewNetworkTransportWithLogger(l, 3, 10*time.Second, logger)
		rc := raft.DefaultConfig()
		rc.LocalID = servers[i].ID
		rc.Logger = logger
		rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout = 500*time.Millisecond, 500*time.Millisecond, 250*time.Millisecond
		notify := make(chan bool, 8)
		rc.NotifyCh = notify
		go func() {
			for lead := range notify {
				if lead {
					select {
					case leaders <- i:
					default: // only the first leader matters
					}
				}
			}
		}()
		fsms[i] = &counter{ch: make(chan string, 16)}
		store := raft.NewInmemStore()
		if i == 0 {
			if err := raft.BootstrapCluster(rc, store, store, raft.NewInmemSnapshotStore(), trans, raft.Configuration{Servers: servers}); err != nil {
				t.Fatal(err)
			}
		}
		r, err := raft.NewRaft(rc, fsms[i], store, store, raft.NewInmemSnapshotStore(), trans)
		if err != nil {
			t.Fatal(err)
		}
		rafts[i] = r
		t.Cleanup(func() {
			r.Shutdown().Error() // raft sends nothing on notify after this
			trans.Close()
			close(notify)
		})
	}

	var leader int
	select {
	case leader = <-leaders:
	case <-time.After(30 * time.Second):
		t.Fatal("no leader within 30 s")
	}
	if err := rafts[leader].Apply([]byte("hello"), 10*time.Second).Error(); err != nil {
		t.Fatalf("apply on leader n%d: %v", leader, err)
	}
	deadline := time.After(30 * time.Second)
	for i, f := range fsms {
		select {
		case got := <-f.ch:
			if got != "hello" {
				t.Fatalf("n%d applied %q", i, got)
			}
		case <-deadline:
			t.Fatalf("n%d did not apply the entry within 30 s", i)
		}
	}
}

// TestRefused: a layer refuses every certificate but a server's of its own
// CA and cluster, as listener and as dialer.
func TestRefused(t *testing.T) {
	c := newCerts(t)
	other := newCerts(t)
	layer := listen(t, c.source(t, tlsconf.RoleServer, "n1"))
	tests := []struct {
		name string
		cert tls.Certificate
		want string
		// Acting as a server, pki's non-server certificates already lack
		// the server auth usage (tlsconf's tests cover one that has it).
		wantAsServer string
	}{
		{"lb", c.rawPair(t, tlsconf.RoleLB, "lb1"), "has role lb, want server", "incompatible key usage"},
		{"agent", c.rawPair(t, tlsconf.RoleAgent, "i-1"), "has role agent, want server", "incompatible key usage"},
		{"operator", c.rawPair(t, tlsconf.RoleOperator, "alice"), "has role operator, want server", "incompatible key usage"},
		{"server of another CA", other.rawPair(t, tlsconf.RoleServer, "n1"), "unknown authority", "unknown authority"},
	}
	for _, tt := range tests {
		t.Run(tt.name+" dials in", func(t *testing.T) {
			accepted := make(chan error, 1)
			go func() {
				conn, err := layer.Accept()
				if err != nil {
					accepted <- err
					return
				}
				defer conn.Close()
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				_, err = conn.Read(make([]byte, 1)) // runs the handshake
				accepted <- err
			}()
			d := &tls.Dialer{Config: &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, Certificates: []tls.Certificate{tt.cert}}}
			conn, err := d.DialContext(t.Context(), "tcp", layer.Addr().String())
			if err == nil {
				// TLS 1.3: the refusal arrives after the client's handshake.
				conn.SetDeadline(time.Now().Add(10 * time.Second))
				conn.Write([]byte{0})
				_, err = conn.Read(make([]byte, 1))
				conn.Close()
			}
			if err == nil {
				t.Error("client was not refused")
			}
			select {
			case err := <-accepted:
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("layer: %v, want %q", err, tt.want)
				}
			case <-time.After(15 * time.Second):
				t.Fatal("layer did not finish the handshake")
			}
		})
		t.Run(tt.name+" listens", func(t *testing.T) {
			ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{tt.cert}, ClientAuth: tls.RequireAnyClientCert})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				if conn, err := ln.Accept(); err == nil {
					conn.Read(make([]byte, 1))
					conn.Close()
				}
			}()
			conn, err := layer.Dial(raft.ServerAddress(ln.Addr().String()), 10*time.Second)
			if err == nil {
				conn.Close()
				t.Fatal("layer dialled a peer that is not a server of its cluster")
			}
			if !strings.Contains(err.Error(), tt.wantAsServer) {
				t.Fatalf("Dial: %v, want %q", err, tt.wantAsServer)
			}
		})
	}

	// And a real peer is accepted both ways.
	peer := listen(t, c.source(t, tlsconf.RoleServer, "n2"))
	go func() {
		if conn, err := peer.Accept(); err == nil {
			buf := make([]byte, 1)
			if _, err := io.ReadFull(conn, buf); err == nil {
				conn.Write(buf)
			}
			conn.Close()
		}
	}()
	conn, err := layer.Dial(raft.ServerAddress(peer.Addr().String()), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte{42}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1)
	if _, err := io.ReadFull(conn, buf); err != nil || buf[0] != 42 {
		t.Fatalf("echo: %v %v", buf, err)
	}
	if v := conn.(*tls.Conn).ConnectionState().Version; v != tls.VersionTLS13 {
		t.Fatalf("version %x, want TLS 1.3", v)
	}
}

func TestListenRefusesNonServer(t *testing.T) {
	c := newCerts(t)
	cfg := DefaultConfig()
	cfg.Bind, cfg.Source = "127.0.0.1:0", c.source(t, tlsconf.RoleAgent, "i-1")
	if _, err := Listen(cfg); err == nil || !strings.Contains(err.Error(), "a server certificate is needed") {
		t.Fatalf("Listen with an agent certificate: %v", err)
	}
	for _, tt := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Bind = "" }, "raft-addr: required"},
		{func(c *Config) { c.HandshakeTimeout = 0 }, "handshake-timeout (0s): must be positive"},
		{func(c *Config) { c.Source = nil }, "source: required"},
		{func(c *Config) { c.Advertise = "nonsense" }, `advertise-raft ("nonsense")`},
	} {
		bad := cfg
		tt.edit(&bad)
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate() = %v, want %q", err, tt.want)
		}
	}
	cfg.Source = c.source(t, tlsconf.RoleServer, "n1")
	cfg.Bind = "0.0.0.0:0"
	if _, err := Listen(cfg); err == nil || !strings.Contains(err.Error(), "advertise-raft") {
		t.Fatalf("Listen on 0.0.0.0 without advertise: %v", err)
	}
}
