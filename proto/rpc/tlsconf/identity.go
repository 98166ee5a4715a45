package tlsconf

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Role is what a certificate may do; it is the first path segment of its
// SPIFFE id.
type Role string

// The roles. A server runs raft and the cluster-internal RPCs; only a server
// certificate may act as a server.
const (
	RoleServer   Role = "server"
	RoleLB       Role = "lb"
	RoleAgent    Role = "agent"
	RoleOperator Role = "operator"
)

// Roles lists every known role, servers first.
var Roles = []Role{RoleServer, RoleLB, RoleAgent, RoleOperator}

// ErrIdentity is wrapped by every error about a malformed or unexpected
// identity.
var ErrIdentity = errors.New("certificate identity")

// MaxNameLen bounds a cluster or peer name; instance ids and node ids fit
// with room to spare.
const MaxNameLen = 128

// Identity is who a certificate speaks for:
// spiffe://<Cluster>/<Role>/<Name>.
type Identity struct {
	Cluster string
	Role    Role
	Name    string
}

// String is the SPIFFE id.
func (id Identity) String() string { return id.URI().String() }

// URI is the SPIFFE id as the certificate carries it.
func (id Identity) URI() *url.URL {
	return &url.URL{Scheme: "spiffe", Host: id.Cluster, Path: "/" + string(id.Role) + "/" + id.Name}
}

// Validate checks each part, naming the part that is wrong.
func (id Identity) Validate() error {
	if err := CheckCluster(id.Cluster); err != nil {
		return err
	}
	if !slices.Contains(Roles, id.Role) {
		return fmt.Errorf("%w: role (%q): must be one of %s", ErrIdentity, id.Role, roleList(Roles))
	}
	return CheckName("name", id.Name)
}

// CheckName reports whether v may be a cluster or peer name: 1 to
// MaxNameLen letters, digits, '.', '_' or '-', not starting with '.' or '-'.
// The charset keeps SPIFFE ids, file names and log lines free of escaping.
func CheckName(field, v string) error {
	if v == "" {
		return fmt.Errorf("%w: %s: required", ErrIdentity, field)
	}
	if len(v) > MaxNameLen {
		return fmt.Errorf("%w: %s (%q): longer than %d characters", ErrIdentity, field, v, MaxNameLen)
	}
	if v[0] == '.' || v[0] == '-' {
		return fmt.Errorf("%w: %s (%q): must not start with %q", ErrIdentity, field, v, v[0])
	}
	for _, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %s (%q): %q not allowed (letters, digits, '.', '_', '-')", ErrIdentity, field, v, c)
		}
	}
	return nil
}

// CheckCluster is CheckName for a cluster, which is a SPIFFE trust domain
// and so also lowercase.
func CheckCluster(v string) error {
	if err := CheckName("cluster", v); err != nil {
		return err
	}
	if strings.ToLower(v) != v {
		return fmt.Errorf("%w: cluster (%q): must be lowercase", ErrIdentity, v)
	}
	return nil
}

// ParseRole returns the Role named s.
func ParseRole(s string) (Role, error) {
	if r := Role(s); slices.Contains(Roles, r) {
		return r, nil
	}
	return "", fmt.Errorf("%w: role (%q): must be one of %s", ErrIdentity, s, roleList(Roles))
}

// ParseIdentity reads the identity of cert: it must carry exactly one URI
// SAN, and that one a SPIFFE id of a known role. It checks only the form;
// whether the certificate is trusted is the handshake's job.
func ParseIdentity(cert *x509.Certificate) (Identity, error) {
	if cert == nil {
		return Identity{}, fmt.Errorf("%w: no certificate", ErrIdentity)
	}
	if len(cert.URIs) != 1 {
		return Identity{}, fmt.Errorf("%w: want exactly one URI SAN, the certificate has %d", ErrIdentity, len(cert.URIs))
	}
	return ParseURI(cert.URIs[0])
}

// ParseURI reads a SPIFFE id, strictly: spiffe://<cluster>/<role>/<name>
// and nothing else (no port, user, query, fragment or escapes).
func ParseURI(u *url.URL) (Identity, error) {
	s := u.String()
	switch {
	case u.Scheme != "spiffe":
		return Identity{}, fmt.Errorf("%w: %q: scheme must be spiffe", ErrIdentity, s)
	case u.Opaque != "" || u.User != nil || u.Port() != "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.RawFragment != "" || u.RawPath != "":
		return Identity{}, fmt.Errorf("%w: %q: must be spiffe://<cluster>/<role>/<name> with nothing else", ErrIdentity, s)
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	if !strings.HasPrefix(u.Path, "/") || len(parts) != 2 {
		return Identity{}, fmt.Errorf("%w: %q: path must be /<role>/<name>", ErrIdentity, s)
	}
	id := Identity{Cluster: u.Host, Role: Role(parts[0]), Name: parts[1]}
	if err := id.Validate(); err != nil {
		return Identity{}, fmt.Errorf("%q: %w", s, err)
	}
	return id, nil
}

func roleList(rs []Role) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, ", ")
}
