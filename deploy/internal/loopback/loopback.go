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
//
// The one explicit binder that matters is this process's next pick: a
// port is free again once the probe closes, and a sandbox picks a dozen
// before it binds any, so two random picks from ~12,000 ports meet about
// once in 200 sandboxes (a node then exits 1 on "address already in
// use"). Addr therefore never hands out the same port twice in one
// process.

const (
	// lowest is the bottom of the range picked from: above the well-known
	// and common service ports.
	lowest = 20000
	// attempts bounds the random tries before falling back to port 0.
	attempts = 64
)

var (
	// given holds every port Addr has handed out in this process.
	givenMu sync.Mutex
	given   = map[int]bool{}

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
	givenMu.Lock()
	defer givenMu.Unlock()
	for range attempts {
		p := lowest + rand.IntN(hi-lowest)
		if given[p] {
			continue
		}
		if addr, ok := probe(p); ok {
			given[p] = true
			return addr, nil
		}
	}
	for range attempts {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("free port: %w", err)
		}
		addr := ln.Addr().(*net.TCPAddr)
		if err := ln.Close(); err != nil {
			return "", fmt.Errorf("free port: %w", err)
		}
		if !given[addr.Port] {
			given[addr.Port] = true
			return addr.String(), nil
		}
	}
	return "", fmt.Errorf("free port: no port free on 127.0.0.1 that this process has not handed out already (%d tries)", 2*attempts)
}

// probe binds 127.0.0.1:p and closes it again: whether p is free now.
func probe(p int) (string, bool) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return "", false
	}
	addr := ln.Addr().String()
	return addr, ln.Close() == nil
}
