package enrollbench

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// Instance is what the driver needs of a local-cloud instance.
type Instance struct {
	ID, IP, IMDS string
}

// result is one agent's outcome.
type result struct {
	enrolled, streaming time.Duration // since the start
	retries             int
	err                 error
}

// maxIMDSBody bounds what an IMDS answer may be.
const maxIMDSBody = 64 << 10

// imdsGet fetches the identity document and its signature over IMDSv2.
func imdsGet(ctx context.Context, hc *http.Client, endpoint string) (doc, sig []byte, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, endpoint+"latest/api/token", nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("X-aws-ec2-metadata-token-ttl-seconds", "300")
	tok, err := do(hc, req)
	if err != nil {
		return nil, nil, fmt.Errorf("imds token: %w", err)
	}
	get := func(path string) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+path, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("X-aws-ec2-metadata-token", string(tok))
		return do(hc, req)
	}
	if doc, err = get("latest/dynamic/instance-identity/document"); err != nil {
		return nil, nil, fmt.Errorf("imds document: %w", err)
	}
	if sig, err = get("latest/dynamic/instance-identity/signature"); err != nil {
		return nil, nil, fmt.Errorf("imds signature: %w", err)
	}
	return doc, sig, nil
}

func do(hc *http.Client, req *http.Request) ([]byte, error) {
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxIMDSBody))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(b)))
	}
	return b, nil
}

// agent is one simulated shoal-agent's first start.
type agent struct {
	in      Instance
	cfg     *Config
	roots   *x509.CertPool
	hc      *http.Client
	start   time.Time
	coord   string
	streams chan<- func() // closers of open streams, closed by the driver at the end
}

// run enrolls, then streams until it has its welcome.
func (a *agent) run(ctx context.Context) (r result) {
	doc, sig, err := imdsGet(ctx, a.hc, a.in.IMDS)
	if err != nil {
		r.err = err
		return r
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		r.err = err
		return r
	}
	csrDER, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: a.in.ID}}, key)
	if err != nil {
		r.err = err
		return r
	}
	nonce := make([]byte, 32)
	_, _ = rand.Read(nonce)
	req := &shoalv1.EnrollRequest{IdentityDocument: doc, IdentitySignature: sig, Nonce: nonce,
		Csr: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csrDER})}
	cc, err := a.dial(nil)
	if err != nil {
		r.err = err
		return r
	}
	var resp *shoalv1.EnrollResponse
	for {
		cctx, cancel := context.WithTimeout(ctx, a.cfg.CallTimeout)
		resp, err = shoalv1.NewAgentServiceClient(cc).Enroll(cctx, req)
		cancel()
		// A real agent retries what may pass later (no leader yet, a busy
		// node); a refusal is final.
		if c := status.Code(err); err == nil || (c != codes.Unavailable && c != codes.DeadlineExceeded && c != codes.ResourceExhausted) || ctx.Err() != nil {
			break
		}
		r.retries++
		if !sleep(ctx, a.cfg.Backoff) {
			break
		}
	}
	_ = cc.Close()
	if err != nil {
		r.err = fmt.Errorf("enroll: %w", err)
		return r
	}
	r.enrolled = time.Since(a.start)
	var chain [][]byte
	for rest := resp.GetCertificateChain(); ; {
		var blk *pem.Block
		if blk, rest = pem.Decode(rest); blk == nil {
			break
		}
		chain = append(chain, blk.Bytes)
	}
	if len(chain) == 0 {
		r.err = errors.New("enroll: no certificate in the answer")
		return r
	}
	cert := &tls.Certificate{Certificate: chain, PrivateKey: key}
	if r.err = a.stream(ctx, cert, &r); r.err == nil {
		r.streaming = time.Since(a.start)
	}
	return r
}

// stream opens the Connect stream with the agent certificate and waits for
// the welcome; the stream stays open until the driver closes it.
func (a *agent) stream(ctx context.Context, cert *tls.Certificate, r *result) error {
	cc, err := a.dial(cert)
	if err != nil {
		return err
	}
	hello := &shoalv1.AgentHello{InstanceId: a.in.ID, Fleet: a.cfg.Fleet, PrivateIp: a.in.IP, AgentVersion: "enrollbench",
		Interval: durationpb.New(10 * time.Second), StartTime: timestamppb.New(a.start)}
	for {
		sctx, cancel := context.WithCancel(ctx)
		st, err := shoalv1.NewAgentServiceClient(cc).Connect(sctx)
		if err == nil {
			err = st.Send(&shoalv1.ConnectRequest{Msg: &shoalv1.ConnectRequest_Hello{Hello: hello}})
		}
		var m *shoalv1.ConnectResponse
		if err == nil {
			m, err = st.Recv()
		}
		if err == nil && m.GetWelcome() != nil {
			a.streams <- func() { cancel(); _ = cc.Close() }
			return nil
		}
		cancel()
		if err == nil {
			err = errors.New("connect: the first answer was not a welcome")
		}
		if c := status.Code(err); (c != codes.Unavailable && c != codes.NotFound) || ctx.Err() != nil {
			_ = cc.Close()
			return fmt.Errorf("connect: %w", err)
		}
		r.retries++
		if !sleep(ctx, a.cfg.Backoff) {
			_ = cc.Close()
			return fmt.Errorf("connect: %w", err)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// serverTLS verifies the coordinator as a server of the cluster, as
// tlsconf.ClientConfig does, presenting cert if it is not nil.
func (a *agent) serverTLS(cert *tls.Certificate) *tls.Config {
	c := &tls.Config{
		MinVersion: tls.VersionTLS13,
		// Not insecure: VerifyConnection checks the chain and the SPIFFE id.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("coordinator presented no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			leaf := cs.PeerCertificates[0]
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: a.roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
				return err
			}
			id, err := tlsconf.ParseIdentity(leaf)
			if err != nil {
				return err
			}
			if id.Role != tlsconf.RoleServer || id.Cluster != a.cfg.Cluster {
				return fmt.Errorf("coordinator certificate %s: want a server of cluster %q", id, a.cfg.Cluster)
			}
			return nil
		},
	}
	if cert != nil {
		c.Certificates = []tls.Certificate{*cert}
	}
	return c
}

// dial connects from the instance's own address, as shoal-agent binds its
// coordinator connections to its private IP.
func (a *agent) dial(cert *tls.Certificate) (*grpc.ClientConn, error) {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(a.in.IP)}, Timeout: 10 * time.Second}
	return rpc.Dial(a.coord, tlsconf.DialOption(a.serverTLS(cert)),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }))
}
