package node

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// rotationWait bounds every wait of the CA rotation test: the node's file
// watch runs every rotationReload, so each step normally takes a few ticks.
const (
	rotationWait   = 20 * time.Second
	rotationReload = 50 * time.Millisecond
	rotationPoll   = 20 * time.Millisecond
)

// TestCARotationKeepsAgentStreams walks ARCHITECTURE.md's CA rotation on a
// running node whose --ca-cert, --cert and --key files are rewritten under
// it, while one agent streams the whole time: (1) trust CA1+CA2, (2) a
// server certificate from CA2, (3) trust CA2 only. The agent's stream, set
// up under CA1 by a client that trusts CA1 alone (so it could not have
// reconnected once the server presents CA2's certificate), is never dropped.
func TestCARotationKeepsAgentStreams(t *testing.T) {
	ca1, ca2 := newTestPKI(t), newTestPKI(t)
	dir := t.TempDir()
	bundleFile := filepath.Join(dir, "ca.pem")
	certFile, keyFile := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	replaceFile(t, bundleFile, ca1.ca.CertPEM())
	c1, k1 := ca1.issue(t, tlsconf.RoleServer, "n1")
	replaceFile(t, certFile, readFile(t, c1))
	replaceFile(t, keyFile, readFile(t, k1))
	// What clients trust from the start of step 1 on: both CAs.
	bothFile := filepath.Join(dir, "clients-ca.pem")
	replaceFile(t, bothFile, append(ca1.ca.CertPEM(), ca2.ca.CertPEM()...))

	c := testConfig(t)
	c.Security.Insecure = false
	c.Security.TLS.CAFile, c.Security.TLS.CertFile, c.Security.TLS.KeyFile = bundleFile, certFile, keyFile
	c.Security.ReloadEvery = rotationReload
	c.AgentAddr = freeAddr(t)
	n, err := New(t.Context(), c)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	defer func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("Run did not return within 30s")
		}
	}()

	// An operator bootstraps ACLs and creates the fleet.
	opCert, opKey := ca1.issue(t, tlsconf.RoleOperator, "alice")
	opConn := rotationDial(t, c.RPCAddr, ca1.caFile, opCert, opKey)
	control, acl := shoalv1.NewControlServiceClient(opConn), shoalv1.NewACLServiceClient(opConn)
	waitFor(t, "a leader over mutual TLS", func() error {
		st, err := control.GetStatus(ctx, &shoalv1.GetStatusRequest{})
		if err == nil && st.GetLeaderId() != "n1" {
			err = fmt.Errorf("leader %q", st.GetLeaderId())
		}
		return err
	})
	boot, err := acl.BootstrapACL(ctx, &shoalv1.BootstrapACLRequest{})
	if err != nil {
		t.Fatalf("BootstrapACL: %v", err)
	}
	authed := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+boot.GetSecret())
	if _, err := control.CreateFleet(authed, &shoalv1.CreateFleetRequest{Fleet: &shoalv1.Fleet{Name: "web", Asg: "web-asg", Min: 1, Max: 3}}); err != nil {
		t.Fatalf("CreateFleet: %v", err)
	}

	// The first agent: a CA1 certificate and a client that trusts CA1 only.
	a1Cert, a1Key := ca1.issue(t, tlsconf.RoleAgent, "i-0000000000000a01")
	a1Conn := rotationDial(t, c.AgentAddr, ca1.caFile, a1Cert, a1Key)
	streamCtx, stopStream := context.WithCancel(ctx)
	defer stopStream()
	var stream grpc.BidiStreamingClient[shoalv1.ConnectRequest, shoalv1.ConnectResponse]
	waitFor(t, "the first agent's welcome", func() error {
		st, err := connectAgent(streamCtx, a1Conn, "i-0000000000000a01")
		stream = st
		return err
	})
	p := startPinger(stream)
	defer p.stop(t)
	p.waitPast(t, "before the rotation", p.acks.Load())

	// Step 1: trust CA1 and CA2. A CA2 agent gets in once the node has
	// loaded the bundle; its server certificate is still CA1's.
	replaceFile(t, bundleFile, append(ca1.ca.CertPEM(), ca2.ca.CertPEM()...))
	a2Cert, a2Key := ca2.issue(t, tlsconf.RoleAgent, "i-0000000000000a02")
	waitFor(t, "a CA2 agent welcomed after the bundle holds both CAs", func() error {
		return welcomed(ctx, c.AgentAddr, bothFile, a2Cert, a2Key, "i-0000000000000a02")
	})
	if leaf := serverLeaf(t, c.AgentAddr, bothFile, a2Cert, a2Key); !issuedBy(leaf, ca1) {
		t.Fatalf("server certificate issued by %s before it was replaced, want CA1", leaf.Issuer)
	}
	p.waitPast(t, "after trusting both CAs", p.acks.Load())

	// Step 2: a server certificate from CA2, same identity server/n1.
	c2, k2 := ca2.issue(t, tlsconf.RoleServer, "n1")
	replaceFile(t, certFile, readFile(t, c2))
	replaceFile(t, keyFile, readFile(t, k2))
	waitFor(t, "a new connection sees CA2's server certificate", func() error {
		leaf, err := handshake(c.AgentAddr, bothFile, a2Cert, a2Key)
		if err == nil && !issuedBy(leaf, ca2) {
			err = fmt.Errorf("server certificate still issued by CA1 (serial %s)", leaf.SerialNumber)
		}
		return err
	})
	// The first agent's stream is the one it opened under CA1: its client
	// trusts CA1 only and could not handshake with the node any more.
	if _, err := handshake(c.AgentAddr, ca1.caFile, a1Cert, a1Key); !errors.Is(err, tlsconf.ErrPeer) {
		t.Fatalf("a client trusting CA1 only, handshaking with the CA2 server certificate: %v, want %v", err, tlsconf.ErrPeer)
	}
	p.waitPast(t, "after the server certificate moved to CA2", p.acks.Load())

	// Both CAs are trusted: agents of either connect anew.
	a3Cert, a3Key := ca2.issue(t, tlsconf.RoleAgent, "i-0000000000000a03")
	if err := welcomed(ctx, c.AgentAddr, bothFile, a3Cert, a3Key, "i-0000000000000a03"); err != nil {
		t.Fatalf("a CA2 agent during the rotation: %v", err)
	}
	a4Cert, a4Key := ca1.issue(t, tlsconf.RoleAgent, "i-0000000000000a04")
	if err := welcomed(ctx, c.AgentAddr, bothFile, a4Cert, a4Key, "i-0000000000000a04"); err != nil {
		t.Fatalf("a CA1 agent during the rotation: %v", err)
	}

	// Step 3: drop CA1. A new connection with a CA1 certificate is refused
	// at the handshake once the node has reloaded.
	replaceFile(t, bundleFile, ca2.ca.CertPEM())
	a5Cert, a5Key := ca1.issue(t, tlsconf.RoleAgent, "i-0000000000000a05")
	// The refusal is the node's TLS alert (crypto/tls reports a received
	// alert as a net.OpError "remote error"); any other failure, a timeout
	// of a loaded machine say, is not it.
	waitFor(t, "a CA1 agent refused at the handshake", func() error {
		_, err := handshake(c.AgentAddr, bothFile, a5Cert, a5Key)
		var alert *net.OpError
		if errors.As(err, &alert) && alert.Op == "remote error" && strings.Contains(err.Error(), "bad certificate") {
			return nil
		}
		return fmt.Errorf("handshake of a CA1 agent certificate: %v, want the node's alert \"bad certificate\"", err)
	})
	err = welcomed(ctx, c.AgentAddr, bothFile, a5Cert, a5Key, "i-0000000000000a05")
	if s, _ := status.FromError(err); s.Code() != codes.Unavailable {
		t.Errorf("Connect with a CA1 agent certificate after CA1 was dropped: %v, want Unavailable (refused at the handshake)", err)
	}
	a6Cert, a6Key := ca2.issue(t, tlsconf.RoleAgent, "i-0000000000000a06")
	if err := welcomed(ctx, c.AgentAddr, bothFile, a6Cert, a6Key, "i-0000000000000a06"); err != nil {
		t.Fatalf("a CA2 agent after CA1 was dropped: %v", err)
	}
	// Live connections are untouched by a reload (ARCHITECTURE.md "Reload
	// without restart"): the stream authenticated under CA1 goes on until
	// it ends by itself; only its next connection would be refused.
	p.waitPast(t, "after CA1 was dropped", p.acks.Load())
}

// pinger sends SampleBatch messages on one stream, each with a sample the
// node rejects so it answers with a BatchAck, and counts the acks.
type pinger struct {
	acks    atomic.Uint64 // seq of the last acked batch
	quit    chan struct{}
	done    chan struct{}
	errOnce sync.Once
	err     error
}

func startPinger(st grpc.BidiStreamingClient[shoalv1.ConnectRequest, shoalv1.ConnectResponse]) *pinger {
	p := &pinger{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for seq := uint64(1); ; seq++ {
			if err := pingOnce(st, seq); err != nil {
				p.err = err
				return
			}
			p.acks.Store(seq)
			select {
			case <-p.quit:
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

func pingOnce(st grpc.BidiStreamingClient[shoalv1.ConnectRequest, shoalv1.ConnectResponse], seq uint64) error {
	batch := &shoalv1.SampleBatch{Seq: seq, Ready: true, Samples: []*shoalv1.Sample{
		{UnixMs: time.Now().UnixMilli(), Values: map[string]float64{"cpu": 0.25}},
		{UnixMs: time.Now().UnixMilli()}, // no values: rejected, so acked
	}}
	if err := st.Send(&shoalv1.ConnectRequest{Msg: &shoalv1.ConnectRequest_Batch{Batch: batch}}); err != nil {
		return fmt.Errorf("send batch %d: %w", seq, err)
	}
	for {
		m, err := st.Recv()
		if err != nil {
			return fmt.Errorf("waiting for the ack of batch %d: %w", seq, err)
		}
		if ack := m.GetAck(); ack != nil {
			if ack.GetSeq() != seq || ack.GetRejected() != 1 {
				return fmt.Errorf("ack %v for batch %d, want seq %d with 1 rejected", ack, seq, seq)
			}
			return nil
		}
	}
}

// waitPast waits for an ack of a batch after seq, failing at once if the
// stream broke.
func (p *pinger) waitPast(t *testing.T, when string, seq uint64) {
	t.Helper()
	deadline := time.NewTimer(rotationWait)
	defer deadline.Stop()
	tick := time.NewTicker(rotationPoll)
	defer tick.Stop()
	for p.acks.Load() <= seq {
		select {
		case <-p.done:
			t.Fatalf("%s: the first agent's stream broke: %v", when, p.err)
		case <-deadline.C:
			t.Fatalf("%s: no ack past batch %d within %v", when, seq, rotationWait)
		case <-tick.C:
		}
	}
}

// stop ends the pings and fails the test if the stream had broken.
func (p *pinger) stop(t *testing.T) {
	t.Helper()
	p.errOnce.Do(func() { close(p.quit) })
	select {
	case <-p.done:
	case <-time.After(rotationWait):
		t.Errorf("the pinger did not stop within %v", rotationWait)
		return
	}
	if p.err != nil {
		t.Errorf("the first agent's stream broke: %v", p.err)
	}
}

// connectAgent opens AgentService.Connect as instance id of fleet web and
// waits for its Welcome.
func connectAgent(ctx context.Context, cc *grpc.ClientConn, id string) (grpc.BidiStreamingClient[shoalv1.ConnectRequest, shoalv1.ConnectResponse], error) {
	st, err := shoalv1.NewAgentServiceClient(cc).Connect(ctx)
	if err != nil {
		return nil, err
	}
	hello := &shoalv1.AgentHello{InstanceId: id, Fleet: "web"}
	if err := st.Send(&shoalv1.ConnectRequest{Msg: &shoalv1.ConnectRequest_Hello{Hello: hello}}); err != nil {
		_, rerr := st.Recv() // the status is on Recv
		return nil, rerr
	}
	for {
		m, err := st.Recv()
		if err != nil {
			return nil, err
		}
		if w := m.GetWelcome(); w != nil {
			if w.GetNodeId() != "n1" || w.GetFleet() != "web" {
				return nil, fmt.Errorf("welcome %v, want node n1 and fleet web", w)
			}
			return st, nil
		}
	}
}

// welcomed opens a new connection as an agent, waits for its Welcome and
// closes it again.
func welcomed(ctx context.Context, addr, caFile, certFile, keyFile, id string) error {
	cc, err := rotationClient(addr, caFile, certFile, keyFile)
	if err != nil {
		return err
	}
	defer cc.Close()
	ctx, cancel := context.WithTimeout(ctx, rotationWait)
	defer cancel()
	_, err = connectAgent(ctx, cc, id)
	return err
}

func rotationClient(addr, caFile, certFile, keyFile string) (*grpc.ClientConn, error) {
	src, err := tlsconf.NewSource(tlsconf.Config{CAFile: caFile, CertFile: certFile, KeyFile: keyFile, Cluster: "shoal"})
	if err != nil {
		return nil, err
	}
	return rpc.Dial(addr, tlsconf.DialOption(tlsconf.ClientConfig(src)))
}

func rotationDial(t *testing.T, addr, caFile, certFile, keyFile string) *grpc.ClientConn {
	t.Helper()
	cc, err := rotationClient(addr, caFile, certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return cc
}

// handshake makes a new TLS connection as a gRPC client would and returns
// the server's certificate once the server has accepted the client's: in
// TLS 1.3 the server judges the client certificate after the client's
// handshake is done, so its verdict is the first read (its HTTP/2 settings,
// or an alert).
func handshake(addr, caFile, certFile, keyFile string) (*x509.Certificate, error) {
	src, err := tlsconf.NewSource(tlsconf.Config{CAFile: caFile, CertFile: certFile, KeyFile: keyFile, Cluster: "shoal"})
	if err != nil {
		return nil, err
	}
	cfg := tlsconf.ClientConfig(src)
	cfg.NextProtos = []string{"h2"}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return nil, err
	}
	if _, err := conn.Read(make([]byte, 1)); err != nil {
		return nil, fmt.Errorf("after the handshake: %w", err)
	}
	return conn.ConnectionState().PeerCertificates[0], nil
}

func serverLeaf(t *testing.T, addr, caFile, certFile, keyFile string) *x509.Certificate {
	t.Helper()
	leaf, err := handshake(addr, caFile, certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

func issuedBy(leaf *x509.Certificate, p *testPKI) bool {
	return bytes.Equal(leaf.RawIssuer, p.ca.Cert.RawSubject) && leaf.CheckSignatureFrom(p.ca.Cert) == nil
}

// waitFor polls f until it returns nil, failing after rotationWait with its
// last error.
func waitFor(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(rotationWait)
	tick := time.NewTicker(rotationPoll)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, rotationWait, err)
		}
		<-tick.C
	}
}

// replaceFile swaps path's contents in one rename, as a deploy tool would,
// so the node never reads half a file.
func replaceFile(t *testing.T, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
