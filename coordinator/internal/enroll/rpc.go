package enroll

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
	"github.com/shoal-dev/shoal/proto/rpc/tlsconf"
)

// ServiceDeps are a Service's collaborators.
type ServiceDeps struct {
	Verifier *Verifier
	Issuer   *Issuer
	// CACertsPEM is the bundle returned as ca_certificates: the CAs agents
	// trust for the coordinators (both during a CA rotation).
	CACertsPEM []byte
	// Commit replicates a command and returns the FSM's verdict; on a
	// follower it forwards to the leader. An error wrapping fsm.ErrConflict
	// is a racing enrollment of the same instance that won.
	Commit func(ctx context.Context, c fsm.Command) error
	// Denied counts renewal refusals (the counter the Verifier counts
	// into); nil counts nothing.
	Denied *prometheus.CounterVec
	// Logger logs each enrollment and refusal; nil is slog.Default().
	Logger *slog.Logger
}

// Service is the gRPC adapter of enrollment: AgentService's Enroll and
// RenewCertificate. It embeds no generated server so the node can compose
// it with ingest's Connect into one AgentService.
type Service struct {
	d ServiceDeps
}

// NewService checks d and returns a Service.
func NewService(d ServiceDeps) (*Service, error) {
	switch {
	case d.Verifier == nil:
		return nil, errors.New("enroll: service: Verifier is required")
	case d.Issuer == nil:
		return nil, errors.New("enroll: service: Issuer is required")
	case d.Commit == nil:
		return nil, errors.New("enroll: service: Commit is required")
	}
	if err := checkBundle(d.CACertsPEM); err != nil {
		return nil, fmt.Errorf("ca-cert: the bundle given to agents: %w", err)
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	return &Service{d: d}, nil
}

// Enroll verifies an instance's identity document against the connection's
// TCP peer, records the enrollment in raft, and returns its agent
// certificate. The certificate is signed before the commit, so a bad CSR
// commits nothing, but it leaves only once the commit succeeded.
func (s *Service) Enroll(ctx context.Context, req *shoalv1.EnrollRequest) (*shoalv1.EnrollResponse, error) {
	ip := peerAddr(ctx)
	e, err := s.d.Verifier.Verify(ctx, Evidence{
		Document: req.GetIdentityDocument(), Signature: req.GetIdentitySignature(), Nonce: req.GetNonce(), Peer: ip,
	})
	if err != nil {
		return nil, s.fail(ctx, "enroll", ip, err)
	}
	chain, err := s.d.Issuer.Issue(e, req.GetCsr())
	if err != nil {
		return nil, s.fail(ctx, "enroll", ip, err)
	}
	if err := s.d.Verifier.RecordRefusal(s.d.Commit(ctx, fsm.IdentityEnroll(e.Record))); err != nil {
		if _, denied := ReasonOf(err); !denied && !errors.Is(err, fsm.ErrInvalid) {
			err = fmt.Errorf("%w: %w", errNotRecorded, err)
		}
		return nil, s.fail(ctx, "enroll", ip, err)
	}
	exp, err := expiry(chain)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	s.d.Logger.Info("agent enrolled", "instance", e.Document.InstanceID, "fleet", e.Fleet, "group", e.Group, "peer", ip, "expires", exp.AsTime())
	return &shoalv1.EnrollResponse{CertificateChain: chain, CaCertificates: s.d.CACertsPEM, ExpireTime: exp}, nil
}

// RenewCertificate gives the caller's agent certificate, as the handshake
// verified it, a successor for the same instance.
func (s *Service) RenewCertificate(ctx context.Context, req *shoalv1.RenewCertificateRequest) (*shoalv1.RenewCertificateResponse, error) {
	ip := peerAddr(ctx)
	id, ok, err := tlsconf.PeerIdentity(ctx)
	switch {
	case err != nil:
		return nil, status.Errorf(codes.Unauthenticated, "renewal refused: %v", err)
	case !ok:
		return nil, status.Error(codes.Unauthenticated, "renewal refused: a client certificate is required; an agent without one enrolls")
	}
	chain, err := s.d.Issuer.Renew(id, req.GetCsr())
	if r, denied := ReasonOf(err); denied && s.d.Denied != nil {
		s.d.Denied.WithLabelValues(string(r)).Inc()
	}
	if err != nil {
		return nil, s.fail(ctx, "renew", ip, err)
	}
	exp, err := expiry(chain)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	s.d.Logger.Info("agent certificate renewed", "instance", id.Name, "peer", ip, "expires", exp.AsTime())
	return &shoalv1.RenewCertificateResponse{CertificateChain: chain, CaCertificates: s.d.CACertsPEM, ExpireTime: exp}, nil
}

var errNotRecorded = errors.New("enrollment not recorded")

// fail turns err into a status with one line for the agent.
func (s *Service) fail(ctx context.Context, op string, ip netip.Addr, err error) error {
	var st *status.Status
	if r, ok := ReasonOf(err); ok {
		var d *DeniedError
		errors.As(err, &d)
		st = status.Newf(codes.PermissionDenied, "%s refused (%s): %s", opNoun(op), r, d.Msg)
	} else {
		switch {
		case errors.Is(err, ErrInvalid) || errors.Is(err, fsm.ErrInvalid):
			st = status.New(codes.InvalidArgument, err.Error())
		case ctx.Err() != nil:
			st = status.FromContextError(ctx.Err())
		default:
			st = status.Newf(codes.Unavailable, "%s: %v; try again", opNoun(op), err)
		}
	}
	s.d.Logger.Warn(opNoun(op)+" refused", "peer", ip, "code", st.Code(), "err", st.Message())
	return st.Err()
}

func opNoun(op string) string {
	if op == "renew" {
		return "renewal"
	}
	return "enrollment"
}

// peerAddr is the TCP peer's address, or the zero Addr.
func peerAddr(ctx context.Context) netip.Addr {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return netip.Addr{}
	}
	if a, ok := p.Addr.(*net.TCPAddr); ok {
		return a.AddrPort().Addr().Unmap()
	}
	ap, err := netip.ParseAddrPort(p.Addr.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func expiry(chainPEM []byte) (*timestamppb.Timestamp, error) {
	blk, _ := pem.Decode(chainPEM)
	if blk == nil {
		return nil, errors.New("enroll: issued certificate is not PEM")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("enroll: issued certificate: %w", err)
	}
	return timestamppb.New(c.NotAfter), nil
}

// checkBundle checks that b holds PEM CA certificates and nothing else.
func checkBundle(b []byte) error {
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			return fmt.Errorf("unexpected PEM block %q", blk.Type)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return fmt.Errorf("certificate %d: %w", n+1, err)
		}
		if !c.IsCA {
			return fmt.Errorf("certificate %d (%s) is not a CA", n+1, c.Subject)
		}
		n++
	}
	if n == 0 {
		return errors.New("no PEM certificate found")
	}
	return nil
}
