//go:build linux

package h1

import (
	"bufio"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/lb/internal/balance"
	"github.com/shoal-dev/shoal/lb/internal/proxy/upstream"
)

// A loop hands a request with a body to the goroutine engine once it has
// read its head; Shutdown may begin before that goroutine runs. The
// request read before Shutdown is answered, as the goroutine engine
// answers every request whose head it read: it was closed unanswered.
func TestHandedRequestIsAnsweredAfterShutdownBegan(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	var e *Engine
	bcfg := balance.DefaultConfig()
	bcfg.Fleet = "web"
	bal, err := balance.New(bcfg, balance.Hooks{Added: func(be *balance.Backend) {
		up := upstream.New(be, time.Second, nil)
		e.Attach(up)
		be.Transport = up
	}})
	if err != nil {
		t.Fatal(err)
	}
	e = New(Config{HeaderTimeout: 5 * time.Second, IdleTimeout: 5 * time.Second, ResponseHeaderTimeout: 5 * time.Second, MaxHeaderBytes: 16 << 10, Loop: true}, bal)
	addr := ln.Addr().String()
	if err := bal.Update(1, []balance.Spec{{ID: addr, Addr: addr, State: balance.Active}}); err != nil {
		t.Fatal(err)
	}

	served, client := tcpPair(t)
	defer client.Close()
	client.SetDeadline(time.Now().Add(5 * time.Second))
	e.closing.Store(true) // Shutdown, after the loop handed the connection over
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.resume(lhandoff{c: served, pre: []byte("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhi")})
	}()
	resp, err := http.ReadResponse(bufio.NewReader(client), nil)
	if err != nil {
		t.Fatalf("handed request unanswered: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("resumed connection not closed after its request, with Shutdown begun")
	}
}
