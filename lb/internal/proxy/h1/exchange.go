package h1

import (
	"errors"
	"net"
	"time"

	"github.com/shoal-dev/shoal/lb/internal/balance"
	"github.com/shoal-dev/shoal/lb/internal/proxy/upstream"
)

// exchange forwards one request, whose head (n bytes) is still in the
// client's buffer, and its response. It returns false when the client
// connection must close.
func (e *Engine) exchange(cl *client, h *head, n int, keep bool) bool {
	hasBody := h.chunked || h.length > 0
	a := e.bal.Attempt()
	defer a.Close()
	headConsumed := false
	// fail answers from the proxy; a request whose body was not read (or
	// only partly) leaves the connection unusable.
	fail := func(status int, msg string) bool {
		if !headConsumed {
			cl.br.Discard(n)
			headConsumed = true
			keep = keep && !hasBody
		}
		cl.reply(status, msg, !keep)
		return keep
	}
	fresh := false
	for {
		be, err := a.Pick()
		if err != nil {
			if a.Tried() {
				return fail(502, a.Last())
			}
			return fail(503, err.Error())
		}
		start := time.Now()
		bc, err := conn(upstream.Of(be), fresh)
		if err != nil {
			o := balance.Outcome{ConnectFailed: true, Failed: true, Err: err.Error(), Latency: time.Since(start)}
			if a.Failed(be, o, balance.Unsent) {
				continue
			}
			return fail(502, a.Last())
		}
		if !headConsumed {
			// The head stays readable in the buffer until the next read
			// from the client; a retry copies it again from there.
			cl.br.Discard(n)
			headConsumed = true
		}
		werr := e.sendRequest(cl, bc, h)
		var resp head
		var rerr error
		if werr == nil {
			if d := e.cfg.ResponseHeaderTimeout; bc.deadline.Sub(start) < d*3/4 {
				bc.deadline = start.Add(d)
				bc.c.SetReadDeadline(bc.deadline)
			}
			rerr = readResponseHead(bc, &resp, cl, false)
		}
		if isFraming(werr) {
			// The client's chunked body broke the framing rules: the
			// backend got the chunks before the bad one and now a
			// closed connection, so it cannot read what follows as a
			// request. The client is answered, not the backend blamed.
			bc.c.Close()
			e.bal.Done(be, balance.Outcome{Status: 400, Latency: time.Since(start)})
			cl.reply(400, werr.Error(), true)
			return false
		}
		if err := errors.Join(werr, rerr); err != nil {
			bc.c.Close()
			retry, status, o := e.tryFailed(be, bc.reused, err, start, hasBody, upstream.Idempotent(h.method))
			if a.Failed(be, o, retry) {
				fresh = retry == balance.Stale
				continue
			}
			// Part of the body may be unread: the connection cannot
			// carry another request.
			keep = keep && !(hasBody && werr != nil)
			cl.reply(status, a.Last(), !keep)
			return keep
		}
		return e.sendResponse(cl, bc, h, &resp, keep, be, start)
	}
}

// tryFailed classifies a try that got no response: the retry it allows,
// the status to answer if it is the last, and the outcome to record.
func (e *Engine) tryFailed(be *balance.Backend, reused bool, err error, start time.Time, hasBody, idem bool) (balance.Retry, int, balance.Outcome) {
	var ne net.Error
	timeout := errors.As(err, &ne) && ne.Timeout()
	msg := "backend " + be.Addr + ": " + err.Error()
	status := 502
	if timeout {
		msg = "backend " + be.Addr + " sent no response within " + e.cfg.ResponseHeaderTimeout.String()
		status = 504
	}
	o := balance.Outcome{Failed: true, Err: msg, Latency: time.Since(start)}
	// Nothing of the response arrived, but the request was sent: the
	// backend may have acted on it. Only a request without a body that is
	// idempotent goes again (a POST never does, as with nginx's default
	// proxy_next_upstream and net/http's Transport). On a pooled
	// connection the backend closed meanwhile, that is a keep-alive race,
	// not a backend failure: the replay goes on a fresh connection and
	// draws nothing from the retry budget.
	switch {
	case timeout || hasBody || !idem:
		return balance.NoRetry, status, o
	case reused:
		return balance.Stale, status, o
	}
	return balance.Replay, status, o
}

// sendRequest writes the request head, with hop-by-hop fields left out and
// X-Forwarded-For extended, and copies the body.
func (e *Engine) sendRequest(cl *client, bc *bconn, h *head) error {
	bw := bc.bw
	writeRequestHead(bw, h, cl.ip)
	var err error
	switch {
	case h.chunked:
		err = copyChunked(bw, cl.br, cl.refresh)
	case h.length > 0:
		err = copyN(bw, cl.br, h.length, cl.refresh)
	}
	if h.chunked || h.length > 0 {
		cl.deadline = time.Time{} // body reads moved it; reset at the next head
	}
	if err != nil {
		return err
	}
	return bw.Flush()
}

// sendResponse copies the response head and body to the client, records
// the outcome and pools the backend connection when it can carry another
// request. It returns false when the client connection must close.
func (e *Engine) sendResponse(cl *client, bc *bconn, h, resp *head, keep bool, be *balance.Backend, start time.Time) bool {
	bw := cl.bw
	noBody := bodyless(h, resp)
	closeDelimited := !noBody && !resp.chunked && resp.length < 0
	writeResponseHead(bw, resp, keep && !closeDelimited, h.minor)
	bc.br.Discard(len(resp.raw))
	var err error
	refresh := func() { bc.refresh(e.cfg.ResponseHeaderTimeout) }
	switch {
	case noBody:
	case resp.chunked:
		err = copyChunked(bw, bc.br, refresh)
	case resp.length >= 0:
		err = copyN(bw, bc.br, resp.length, refresh)
	default:
		err = copyUntilEOF(bw, bc.br, refresh)
	}
	o := balance.Outcome{Status: resp.status, Latency: time.Since(start)}
	if err != nil {
		o.Failed, o.Err = true, "backend "+be.Addr+": "+err.Error()
	}
	e.bal.Done(be, o)
	if err == nil && !closeDelimited && !resp.connClose && resp.minor == 1 && h.minor == 1 {
		upstream.Of(be).H1.(*pool).put(bc)
	} else {
		bc.c.Close()
	}
	return err == nil && !closeDelimited
}

// readResponseHead reads the final response head, forwarding 1xx
// informational responses (other than 101) to the client when there is one.
func readResponseHead(bc *bconn, resp *head, cl *client, upgrade bool) error {
	for {
		n, err := readHead(bc.br, bc.br.Size())
		if err != nil {
			return err
		}
		raw, _ := bc.br.Peek(n)
		if err := parseHead(raw, false, resp); err != nil {
			return err
		}
		if resp.status >= 200 || (upgrade && resp.status == 101) {
			return nil
		}
		if resp.status == 101 {
			return errors.New("unexpected 101 Switching Protocols to a request without Upgrade")
		}
		if cl != nil {
			cl.bw.Write(raw)
		}
		bc.br.Discard(n)
		if cl != nil && bc.br.Buffered() == 0 {
			// The final head is not here yet: the client gets the 1xx
			// now (103 Early Hints is worth only that), not with it. A
			// failed write shows at the response's own flush.
			cl.bw.Flush()
		}
	}
}
