package tlsconf

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
)

// ServerOptions says whom a server accepts.
type ServerOptions struct {
	// PeerRoles are the roles a client certificate may have; empty accepts
	// every role (the gRPC port, where each RPC checks the role itself).
	PeerRoles []Role
	// AllowNoClientCert accepts clients without a certificate, for a
	// process that has none yet (enrollment). A certificate that is given
	// is still verified; RequireRole refuses such callers.
	AllowNoClientCert bool
}

// ServerConfig is the TLS config of a server: TLS 1.3, this Source's
// certificate (which must be a server's), and every client certificate
// verified against the bundle, of this cluster and one of opts.PeerRoles.
func ServerConfig(src *Source, opts ServerOptions) (*tls.Config, error) {
	if err := requireOwnRole(src, RoleServer); err != nil {
		return nil, err
	}
	roles := opts.PeerRoles
	if len(roles) == 0 {
		roles = Roles
	}
	for _, r := range roles {
		if !slices.Contains(Roles, r) {
			return nil, fmt.Errorf("%w: peer role (%q): must be one of %s", ErrIdentity, r, roleList(Roles))
		}
	}
	auth := tls.RequireAnyClientCert
	if opts.AllowNoClientCert {
		auth = tls.RequestClientCert
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// The chain is verified in VerifyConnection against the bundle as
		// last loaded; the standard check would pin the pool at build time.
		ClientAuth: auth,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return src.Certificate(), nil
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 && opts.AllowNoClientCert {
				return nil
			}
			return verifyPeer(src, cs, x509.ExtKeyUsageClientAuth, roles)
		},
	}, nil
}

// ClientConfig is the TLS config of a client: TLS 1.3, this Source's
// certificate if it has one, and the server verified against the bundle as
// a server of this cluster. The server is known by its SPIFFE id, never by
// host name, so no other role's certificate can pass for a server.
func ClientConfig(src *Source) *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS13,
		// Not insecure: VerifyConnection verifies the chain and the
		// identity; the standard check would verify a host name instead.
		InsecureSkipVerify: true,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			if c := src.Certificate(); c != nil {
				return c, nil
			}
			return &tls.Certificate{}, nil // none: the server decides
		},
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyPeer(src, cs, x509.ExtKeyUsageServerAuth, []Role{RoleServer})
		},
	}
}

// PeerClientConfig is ClientConfig for a process that must itself be a
// server (raft, server-to-server RPCs).
func PeerClientConfig(src *Source) (*tls.Config, error) {
	if err := requireOwnRole(src, RoleServer); err != nil {
		return nil, err
	}
	return ClientConfig(src), nil
}

func requireOwnRole(src *Source, r Role) error {
	id, ok := src.Identity()
	if !ok {
		return fmt.Errorf("%w: cert-file: required for a %s", ErrIdentity, r)
	}
	if id.Role != r {
		return fmt.Errorf("%w: cert-file: %s is a %s certificate, a %s certificate is needed", ErrIdentity, id, id.Role, r)
	}
	return nil
}

// ErrPeer is wrapped by every refusal of a peer's certificate.
var ErrPeer = errors.New("peer certificate refused")

// verifyPeer checks the peer's chain against the bundle, its extended key
// usage, and that its identity is of this cluster and one of roles.
func verifyPeer(src *Source, cs tls.ConnectionState, usage x509.ExtKeyUsage, roles []Role) error {
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("%w: none presented", ErrPeer)
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: src.Pool(), Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return fmt.Errorf("%w: %w", ErrPeer, err)
	}
	id, err := ParseIdentity(leaf)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrPeer, err)
	}
	if id.Cluster != src.Cluster() {
		return fmt.Errorf("%w: %s is of cluster %q, not %q", ErrPeer, id, id.Cluster, src.Cluster())
	}
	if !slices.Contains(roles, id.Role) {
		return fmt.Errorf("%w: %s has role %s, want %s", ErrPeer, id, id.Role, roleList(roles))
	}
	return nil
}
