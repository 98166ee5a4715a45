package loopback

import (
	"net"
	"strconv"
	"testing"
)

// TestAddrIsBelowTheEphemeralRange: the picked port is free, on loopback,
// and below the range outgoing connections take their ports from.
func TestAddrIsBelowTheEphemeralRange(t *testing.T) {
	for range 20 {
		addr, err := Addr()
		if err != nil {
			t.Fatal(err)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatal(err)
		}
		p, _ := strconv.Atoi(port)
		if host != "127.0.0.1" || p < lowest || p >= ephemeralLow() {
			t.Fatalf("Addr() = %s, want 127.0.0.1 with a port in [%d, %d)", addr, lowest, ephemeralLow())
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("picked %s, not free: %v", addr, err)
		}
		ln.Close()
	}
}

// TestAddrNeverRepeats: a port handed out is not handed out again in the
// same process, even after it is free again (a sandbox picks every node's
// ports before it binds any).
func TestAddrNeverRepeats(t *testing.T) {
	seen := map[string]bool{}
	for range 2000 {
		addr, err := Addr()
		if err != nil {
			t.Fatal(err)
		}
		if seen[addr] {
			t.Fatalf("Addr() handed out %s twice", addr)
		}
		seen[addr] = true
	}
}
