package tlsconf

import (
	"testing"
)

// BenchmarkHandshake is one full mutual TLS 1.3 handshake (ECDSA P-256,
// both chains verified, identities checked) over loopback, resumption off.
func BenchmarkHandshake(b *testing.B) {
	ca := newTestCA(b, "ca")
	server, err := ServerConfig(source(b, ca, ca.pem, "spiffe://shoal/server/n1"), ServerOptions{})
	if err != nil {
		b.Fatal(err)
	}
	server.SessionTicketsDisabled = true
	client := ClientConfig(source(b, ca, ca.pem, "spiffe://shoal/agent/i-1"))
	for b.Loop() {
		if _, _, serr, cerr := handshake(b, server, client); serr != nil || cerr != nil {
			b.Fatal(serr, cerr)
		}
	}
}
