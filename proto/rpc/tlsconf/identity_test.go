package tlsconf

import (
	"crypto/x509"
	"errors"
	"net/url"
	"strings"
	"testing"
)

func TestParseIdentity(t *testing.T) {
	tests := []struct {
		name string
		uris []string
		want Identity
		err  string
	}{
		{"server", []string{"spiffe://shoal/server/n1"}, Identity{"shoal", RoleServer, "n1"}, ""},
		{"lb", []string{"spiffe://prod-eu/lb/lb-1"}, Identity{"prod-eu", RoleLB, "lb-1"}, ""},
		{"agent", []string{"spiffe://shoal/agent/i-0abc123def"}, Identity{"shoal", RoleAgent, "i-0abc123def"}, ""},
		{"operator", []string{"spiffe://shoal/operator/alice.smith_2"}, Identity{"shoal", RoleOperator, "alice.smith_2"}, ""},
		{"no URI", nil, Identity{}, "exactly one URI SAN, the certificate has 0"},
		{"two URIs", []string{"spiffe://shoal/server/n1", "spiffe://shoal/agent/a"}, Identity{}, "has 2"},
		{"https", []string{"https://shoal/server/n1"}, Identity{}, "scheme must be spiffe"},
		{"unknown role", []string{"spiffe://shoal/admin/n1"}, Identity{}, `role ("admin")`},
		{"extra segment", []string{"spiffe://shoal/server/n1/x"}, Identity{}, "path must be /<role>/<name>"},
		{"no name", []string{"spiffe://shoal/server"}, Identity{}, "path must be"},
		{"empty name", []string{"spiffe://shoal/server/"}, Identity{}, "name: required"},
		{"uppercase cluster", []string{"spiffe://Shoal/server/n1"}, Identity{}, `cluster ("Shoal"): must be lowercase`},
		{"uppercase name is fine", []string{"spiffe://shoal/operator/Alice"}, Identity{"shoal", RoleOperator, "Alice"}, ""},
		{"no cluster", []string{"spiffe:///server/n1"}, Identity{}, "cluster: required"},
		{"port", []string{"spiffe://shoal:8443/server/n1"}, Identity{}, "nothing else"},
		{"user", []string{"spiffe://x@shoal/server/n1"}, Identity{}, "nothing else"},
		{"query", []string{"spiffe://shoal/server/n1?a=b"}, Identity{}, "nothing else"},
		{"fragment", []string{"spiffe://shoal/server/n1#f"}, Identity{}, "nothing else"},
		{"escaped slash", []string{"spiffe://shoal/server/n1%2Fx"}, Identity{}, "nothing else"},
		{"escaped char", []string{"spiffe://shoal/server/n%201"}, Identity{}, `name ("n 1")`},
		{"dot dot", []string{"spiffe://shoal/server/.."}, Identity{}, `must not start with '.'`},
		{"long name", []string{"spiffe://shoal/agent/" + strings.Repeat("a", MaxNameLen+1)}, Identity{}, "longer than 128"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &x509.Certificate{}
			for _, s := range tt.uris {
				u, err := url.Parse(s)
				if err != nil {
					t.Fatal(err)
				}
				c.URIs = append(c.URIs, u)
			}
			got, err := ParseIdentity(c)
			if tt.err != "" {
				if !errors.Is(err, ErrIdentity) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want ErrIdentity containing %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
			if got.String() != tt.uris[0] {
				t.Errorf("String() = %q, want %q", got.String(), tt.uris[0])
			}
		})
	}
	if _, err := ParseIdentity(nil); !errors.Is(err, ErrIdentity) {
		t.Errorf("nil: %v", err)
	}
}

func TestParseRole(t *testing.T) {
	for _, r := range Roles {
		if got, err := ParseRole(string(r)); err != nil || got != r {
			t.Errorf("ParseRole(%q) = %q, %v", r, got, err)
		}
	}
	if _, err := ParseRole("Server"); err == nil || !strings.Contains(err.Error(), "server, lb, agent, operator") {
		t.Errorf("ParseRole(Server) = %v", err)
	}
}
