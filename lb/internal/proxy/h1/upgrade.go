package h1

import (
	"bufio"
	"net"
	"time"

	"github.com/shoal-dev/shoal/lb/internal/balance"
	"github.com/shoal-dev/shoal/lb/internal/proxy/upstream"
)

// upgrade passes an Upgrade (WebSocket) request through on a fresh backend
// connection and, on 101, copies bytes both ways until either side closes.
// It is not retried: the client may have sent bytes for the new protocol.
func (e *Engine) upgrade(cl *client, h *head, n int) {
	be, err := e.bal.Pick(nil)
	if err != nil {
		cl.reply(503, err.Error(), true)
		return
	}
	up := upstream.Of(be)
	start := time.Now()
	c, err := up.Dial()
	if err != nil {
		e.bal.Done(be, balance.Outcome{ConnectFailed: true, Failed: true, Err: err.Error()})
		cl.reply(502, err.Error()+" (fleet "+e.bal.Config().Fleet+")", true)
		return
	}
	defer c.Close()
	cl.c.SetReadDeadline(time.Time{})
	bc := &bconn{c: c, br: bufio.NewReader(c), bw: bufio.NewWriter(c)}
	bc.bw.Write(h.line)
	bc.bw.Write(crlf)
	writeHeaders(bc.bw, h, true, true)
	bc.bw.WriteString("X-Forwarded-For: " + cl.ip + "\r\n\r\n")
	cl.br.Discard(n)
	status := 0
	var resp head
	if bc.bw.Flush() == nil && readResponseHead(bc, &resp, cl, true) == nil {
		status = resp.status
		cl.bw.Write(resp.raw)
		bc.br.Discard(len(resp.raw))
		err := cl.bw.Flush()
		switch {
		case err == nil && resp.status == 101:
			s := up.Track(func(error) { c.Close(); cl.c.Close() })
			pipe(cl, bc)
			up.Untrack(s)
		case err == nil:
			copyN(cl.bw, bc.br, max(resp.length, 0), nil)
			cl.bw.Flush()
		}
	}
	e.bal.Done(be, balance.Outcome{Status: status, Latency: time.Since(start)})
}

// pipe copies bytes both ways, through what each reader buffered already,
// until both directions ended.
func pipe(cl *client, bc *bconn) {
	done := make(chan struct{}, 2)
	go func() { cl.br.WriteTo(bc.c); closeWrite(bc.c); done <- struct{}{} }()
	go func() { bc.br.WriteTo(cl.c); closeWrite(cl.c); done <- struct{}{} }()
	<-done
	<-done
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}
