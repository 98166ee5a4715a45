package loopback

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// Port-0 picks come from the kernel's ephemeral range, the same range it
// gives outgoing connections their local ports from. A port picked that
// way and bound only later (the sandbox chooses every node's addresses
// before it starts the first node, seconds before the last one binds) can
// meanwhile become the local end of some connection, and the node then
// fails to start with "address already in use". Ports below the ephemeral
// range are never handed to outgoing connections, so only another explicit
// binder can take them.

const (
	// lowest is the bottom of the range picked from: above the well-known
	// and common service ports.
	lowest = 20000
	// attempts bounds the random tries before falling back to port 0.
	attempts = 64
)

var (
	rangeOnce sync.Once
	ephLow    = 32768 // Linux's default when the sysctl cannot be read
)

// ephemeralLow is the bottom of the kernel's ephemeral port range.
func ephemeralLow() int {
	rangeOnce.Do(func() {
		b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
		if err != nil {
			return
		}
		f := strings.Fields(string(b))
		if len(f) != 2 {
			return
		}
		if lo, err := strconv.Atoi(f[0]); err == nil && lo > lowest+1000 {
			ephLow = lo
		}
	})
	return ephLow
}

// Addr returns 127.0.0.1:port with a port free right now, chosen below the
// kernel's ephemeral range (see above); when none of a few random tries
// is free, a port-0 pick.
func Addr() (string, error) {
	hi := ephemeralLow()
	for range attempts {
		p := lowest + rand.IntN(hi-lowest)
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		addr := ln.Addr().String()
		if err := ln.Close(); err != nil {
			return "", fmt.Errorf("free port: %w", err)
		}
		return addr, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
