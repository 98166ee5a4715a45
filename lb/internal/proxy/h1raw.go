package proxy

// The raw HTTP/1.1 engine (default).
//
// fasthttp parses every request and response into header maps and writes
// them out again; profiles showed that, its worker pool hand-off and its
// per-request deadline updates as the user-space cost above nginx. This
// engine reads a request head, copies it to a pooled backend connection
// with the hop-by-hop headers left out, and copies the response back the
// same way: it parses only what framing needs (method, version,
// Content-Length, Transfer-Encoding, Connection, Upgrade, Expect) and
// streams bodies through the connections' buffers. fasthttp stays
// available as --h1-engine fasthttp.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/lb/internal/balance"
)

var (
	errHeadTooLarge = errors.New("request head exceeds max-header-bytes")
	errBadRequest   = errors.New("malformed request")
	errBadResponse  = errors.New("malformed response")
	crlf            = []byte("\r\n")
	crlfcrlf        = []byte("\r\n\r\n")
)

// head is a parsed request or response head; slices point into the reader's
// buffer and are valid until the reader is advanced.
type head struct {
	raw        []byte // the whole head including the final CRLFCRLF
	line       []byte // first line without CRLF
	method     []byte
	minor      int
	status     int
	length     int64 // -1: none
	chunked    bool
	connClose  bool
	connKeep   bool
	connUpg    bool
	upgrade    bool
	expect100  bool
	xff        []byte
	hasHostHdr bool
}

// readHead reads one head of at most limit bytes from br.
func readHead(br *bufio.Reader, limit int) (int, error) {
	n := 0
	for {
		buf, err := br.Peek(br.Buffered())
		if len(buf) > 0 {
			// Tolerate CRLFs between pipelined requests (RFC 9112 2.2).
			if n == 0 && (buf[0] == '\r' || buf[0] == '\n') {
				br.Discard(1)
				continue
			}
			start := max(n-3, 0)
			if i := bytes.Index(buf[start:], crlfcrlf); i >= 0 {
				return start + i + 4, nil
			}
			n = len(buf)
			if n >= limit {
				return 0, errHeadTooLarge
			}
		}
		if err != nil {
			return 0, err
		}
		if _, err := br.Peek(n + 1); err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return 0, errHeadTooLarge
			}
			if n > 0 && errors.Is(err, io.EOF) {
				return 0, io.ErrUnexpectedEOF
			}
			return 0, err
		}
	}
}

func asciiEqualFold(a []byte, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != b[i] {
			return false
		}
	}
	return true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// forEachToken calls fn for each comma-separated token of v.
func forEachToken(v []byte, fn func([]byte)) {
	for len(v) > 0 {
		i := bytes.IndexByte(v, ',')
		tok := v
		if i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			v = nil
		}
		if tok = trimOWS(tok); len(tok) > 0 {
			fn(tok)
		}
	}
}

// parseHead parses raw as a request (isReq) or response head.
func parseHead(raw []byte, isReq bool, h *head) error {
	*h = head{raw: raw, length: -1}
	i := bytes.Index(raw, crlf)
	h.line = raw[:i]
	bad := errBadRequest
	if !isReq {
		bad = errBadResponse
	}
	if isReq {
		sp1 := bytes.IndexByte(h.line, ' ')
		sp2 := bytes.LastIndexByte(h.line, ' ')
		if sp1 <= 0 || sp2 <= sp1+1 {
			return bad
		}
		h.method = h.line[:sp1]
		v := h.line[sp2+1:]
		if len(v) != 8 || !bytes.HasPrefix(v, []byte("HTTP/1.")) || (v[7] != '0' && v[7] != '1') {
			return bad
		}
		h.minor = int(v[7] - '0')
	} else {
		if len(h.line) < 12 || !bytes.HasPrefix(h.line, []byte("HTTP/1.")) || h.line[8] != ' ' {
			return bad
		}
		h.minor = int(h.line[7] - '0')
		st, err := strconv.Atoi(string(h.line[9:12]))
		if err != nil || st < 100 {
			return bad
		}
		h.status = st
	}
	rest := raw[i+2 : len(raw)-2]
	for len(rest) > 0 {
		j := bytes.Index(rest, crlf)
		line := rest
		if j >= 0 {
			line, rest = rest[:j], rest[j+2:]
		} else {
			rest = nil
		}
		if len(line) == 0 {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			return bad // obsolete line folding
		}
		c := bytes.IndexByte(line, ':')
		if c <= 0 {
			return bad
		}
		name, val := line[:c], trimOWS(line[c+1:])
		switch len(name) {
		case 4:
			if asciiEqualFold(name, "host") {
				h.hasHostHdr = true
			}
		case 6:
			if asciiEqualFold(name, "expect") && asciiEqualFold(val, "100-continue") {
				h.expect100 = true
			}
		case 7:
			if asciiEqualFold(name, "upgrade") {
				h.upgrade = true
			}
		case 10:
			if asciiEqualFold(name, "connection") {
				forEachToken(val, func(t []byte) {
					switch {
					case asciiEqualFold(t, "close"):
						h.connClose = true
					case asciiEqualFold(t, "keep-alive"):
						h.connKeep = true
					case asciiEqualFold(t, "upgrade"):
						h.connUpg = true
					}
				})
			}
		case 14:
			if asciiEqualFold(name, "content-length") {
				n, err := strconv.ParseInt(string(val), 10, 64)
				if err != nil || n < 0 || (h.length >= 0 && h.length != n) {
					return bad
				}
				h.length = n
			}
		case 15:
			if asciiEqualFold(name, "x-forwarded-for") {
				h.xff = val
			}
		case 17:
			if asciiEqualFold(name, "transfer-encoding") {
				h.chunked = true
				forEachToken(val, func(t []byte) {
					h.chunked = asciiEqualFold(t, "chunked") // the last coding must be chunked
				})
				if !h.chunked {
					return bad
				}
			}
		}
	}
	if h.chunked {
		h.length = -1 // RFC 9112 6.3: Transfer-Encoding wins
	}
	return nil
}

// isHop reports whether a header line must not be forwarded.
func isHop(name []byte, forUpgrade bool) bool {
	switch len(name) {
	case 2:
		return asciiEqualFold(name, "te")
	case 6:
		return asciiEqualFold(name, "expect")
	case 7:
		return !forUpgrade && (asciiEqualFold(name, "upgrade") || asciiEqualFold(name, "trailer"))
	case 10:
		return (!forUpgrade && asciiEqualFold(name, "connection")) || asciiEqualFold(name, "keep-alive")
	case 15:
		return asciiEqualFold(name, "x-forwarded-for")
	case 16:
		return asciiEqualFold(name, "proxy-connection")
	case 19:
		return asciiEqualFold(name, "proxy-authorization")
	}
	return false
}

// writeHeaders copies the header lines of h to w, leaving out hop-by-hop
// headers (and, for responses, Connection/Keep-Alive).
func writeHeaders(w *bufio.Writer, h *head, forUpgrade bool) {
	rest := h.raw[len(h.line)+2 : len(h.raw)-2]
	for len(rest) > 0 {
		j := bytes.Index(rest, crlf)
		line := rest
		if j >= 0 {
			line, rest = rest[:j+2], rest[j+2:]
		} else {
			rest = nil
		}
		c := bytes.IndexByte(line, ':')
		if c > 0 && isHop(line[:c], forUpgrade) {
			continue
		}
		w.Write(line)
	}
}

// bconn is a pooled backend connection.
type bconn struct {
	c        net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	deadline time.Time
	reused   bool
	idleAt   time.Time
}

// rawPool holds one backend's idle HTTP/1.1 connections (LIFO, so the
// warmest are reused and the rest age out).
type rawPool struct {
	mu     sync.Mutex
	idle   []*bconn
	closed bool
}

const rawMaxIdle = 256
const rawIdleTTL = 50 * time.Second

func (rp *rawPool) get() *bconn {
	rp.mu.Lock()
	defer rp.mu.Unlock()
	for n := len(rp.idle); n > 0; n = len(rp.idle) {
		bc := rp.idle[n-1]
		rp.idle[n-1] = nil
		rp.idle = rp.idle[:n-1]
		if time.Since(bc.idleAt) < rawIdleTTL {
			bc.reused = true
			return bc
		}
		bc.c.Close()
	}
	return nil
}

func (rp *rawPool) put(bc *bconn) {
	rp.mu.Lock()
	if rp.closed || len(rp.idle) >= rawMaxIdle {
		rp.mu.Unlock()
		bc.c.Close()
		return
	}
	bc.idleAt = time.Now()
	rp.idle = append(rp.idle, bc)
	rp.mu.Unlock()
}

func (rp *rawPool) closeIdle() {
	rp.mu.Lock()
	idle := rp.idle
	rp.idle = nil
	rp.mu.Unlock()
	for _, bc := range idle {
		bc.c.Close()
	}
}

var bufWriterPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 16<<10) }}

// rawClient is the per-connection state of the raw engine.
type rawClient struct {
	p        *Proxy
	c        net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	ip       string
	deadline time.Time
}

// serveRaw serves one HTTP/1.1 client connection until it closes.
func (p *Proxy) serveRaw(c net.Conn) {
	rc := &rawClient{p: p, c: c, br: bufio.NewReaderSize(c, p.cfg.MaxHeaderBytes), bw: bufWriterPool.Get().(*bufio.Writer)}
	rc.bw.Reset(c)
	if host, _, err := net.SplitHostPort(c.RemoteAddr().String()); err == nil {
		rc.ip = host
	}
	p.trackRaw(c, true)
	defer func() {
		p.trackRaw(c, false)
		c.Close()
		rc.bw.Reset(nil)
		bufWriterPool.Put(rc.bw)
	}()
	var h head
	for !p.closing.Load() {
		// Deadlines are moved lazily: a busy connection pays for a timer
		// update once per quarter of the timeout, not per request. The
		// header timeout bounds the wait for a whole request head, so a
		// slowloris client is cut off; between requests it doubles as
		// the idle timeout while it is the shorter one.
		wait := min(p.cfg.HeaderTimeout, p.cfg.IdleTimeout)
		now := time.Now()
		if rc.deadline.Sub(now) < wait*3/4 {
			rc.deadline = now.Add(wait)
			c.SetReadDeadline(rc.deadline)
		}
		n, err := readHead(rc.br, p.cfg.MaxHeaderBytes)
		if err != nil {
			if errors.Is(err, errHeadTooLarge) {
				rc.reply(431, "request head exceeds max-header-bytes "+strconv.Itoa(p.cfg.MaxHeaderBytes), true)
			}
			return
		}
		raw, _ := rc.br.Peek(n)
		if err := parseHead(raw, true, &h); err != nil {
			rc.reply(400, err.Error(), true)
			return
		}
		keep := (h.minor == 1 && !h.connClose) || (h.minor == 0 && h.connKeep)
		if h.upgrade && h.connUpg {
			p.rawUpgrade(rc, &h, n)
			return
		}
		if h.expect100 {
			rc.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
		}
		ok := p.rawExchange(rc, &h, n, keep)
		if !ok || !keep {
			rc.bw.Flush()
			return
		}
		if err := rc.bw.Flush(); err != nil {
			return
		}
	}
}

// refresh moves the client's read deadline before a body read blocks: a
// body may take long, but each stall is bounded by the idle timeout.
func (rc *rawClient) refresh() {
	rc.deadline = time.Now().Add(rc.p.cfg.IdleTimeout)
	rc.c.SetReadDeadline(rc.deadline)
}

// refresh bounds each stall of a streamed response by d.
func (bc *bconn) refresh(d time.Duration) {
	now := time.Now()
	if bc.deadline.Sub(now) < d*3/4 {
		bc.deadline = now.Add(d)
		bc.c.SetReadDeadline(bc.deadline)
	}
}

// reply writes a proxy-made response.
func (rc *rawClient) reply(status int, msg string, closeConn bool) {
	body := msg + "\n"
	fmt.Fprintf(rc.bw, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\n", status, http.StatusText(status), len(body))
	if closeConn {
		rc.bw.WriteString("Connection: close\r\n")
	}
	rc.bw.WriteString("\r\n")
	rc.bw.WriteString(body)
	rc.bw.Flush()
}

// rawExchange forwards one request (head already peeked, n bytes) and its
// response. It returns false when the client connection must close.
func (p *Proxy) rawExchange(rc *rawClient, h *head, n int, keep bool) bool {
	hasBody := h.chunked || h.length > 0
	idem := idempotent(h.method)
	isHead := string(h.method) == "HEAD"
	var (
		exclude *balance.Backend
		retried bool
		lastMsg string
	)
	defer func() {
		if retried {
			p.bal.RetryDone()
		}
	}()
	headConsumed := false
	// fail answers from the proxy; a request whose body was not read
	// (or only partly) leaves the connection unusable.
	fail := func(status int, msg string) bool {
		if !headConsumed {
			rc.br.Discard(n)
			headConsumed = true
			if hasBody {
				keep = false
			}
		}
		rc.reply(status, msg, !keep)
		return keep
	}
	staleRetry := false
	for attempt := 0; ; attempt++ {
		be, err := p.bal.Pick(exclude)
		if err != nil && staleRetry {
			// The only backend had a stale pooled connection: try it
			// again on a fresh one.
			be, err = p.bal.Pick(nil)
		}
		if err != nil {
			if headConsumed && hasBody {
				rc.reply(502, lastMsg, true)
				return false
			}
			if lastMsg != "" {
				return fail(502, lastMsg)
			}
			return fail(503, err.Error())
		}
		up := be.Transport.(*upstream)
		start := time.Now()
		var bc *bconn
		if !staleRetry {
			bc = up.raw.get()
		}
		staleRetry = false
		if bc == nil {
			c, err := net.DialTimeout("tcp", be.Addr, p.cfg.ConnectTimeout)
			if err != nil {
				msg := describeDial(be.Addr, err)
				p.bal.Done(be, balance.Outcome{ConnectFailed: true, Failed: true, Err: msg, Latency: time.Since(start)})
				lastMsg = msg + " (fleet " + p.bal.Config().Fleet + ")"
				if attempt < 2 {
					p.bal.NoteFreeRetry()
					exclude = be
					continue
				}
				return fail(502, lastMsg)
			}
			bc = &bconn{c: c, br: bufio.NewReaderSize(c, 16<<10), bw: bufio.NewWriterSize(c, 16<<10)}
		}
		// Request head.
		bc.bw.Write(h.line)
		bc.bw.Write(crlf)
		writeHeaders(bc.bw, h, false)
		bc.bw.WriteString("X-Forwarded-For: ")
		if len(h.xff) > 0 {
			bc.bw.Write(h.xff)
			bc.bw.WriteString(", ")
		}
		bc.bw.WriteString(rc.ip)
		bc.bw.WriteString("\r\n")
		if h.minor == 0 {
			bc.bw.WriteString("Connection: close\r\n")
		}
		bc.bw.WriteString("\r\n")
		if !headConsumed {
			rc.br.Discard(n)
			headConsumed = true
		}
		var werr error
		switch {
		case h.chunked:
			werr = copyChunked(bc.bw, rc.br, rc.refresh)
		case h.length > 0:
			werr = copyN(bc.bw, rc.br, h.length, rc.refresh)
		}
		if hasBody {
			rc.deadline = time.Time{} // body reads moved it; reset at the next head
		}
		if werr == nil {
			werr = bc.bw.Flush()
		}
		// Response.
		var resp head
		var rerr error
		if werr == nil {
			if d := p.cfg.ResponseHeaderTimeout; bc.deadline.Sub(start) < d*3/4 {
				bc.deadline = start.Add(d)
				bc.c.SetReadDeadline(bc.deadline)
			}
			rerr = readResponseHead(bc, &resp, rc, false)
		}
		if err := errors.Join(werr, rerr); err != nil {
			bc.c.Close()
			var ne net.Error
			timeout := errors.As(err, &ne) && ne.Timeout()
			msg := "backend " + be.Addr + ": " + err.Error()
			if timeout {
				msg = "backend " + be.Addr + " sent no response within " + p.cfg.ResponseHeaderTimeout.String()
			}
			p.bal.Done(be, balance.Outcome{Failed: true, Err: msg, Latency: time.Since(start)})
			lastMsg = msg + " (fleet " + p.bal.Config().Fleet + ")"
			// Nothing of the response arrived: an idempotent request without
			// a body (or one that hit a stale pooled connection) may go
			// again.
			if !timeout && !hasBody && (idem || bc.reused) && attempt < 2 {
				// A pooled connection the backend closed meanwhile is a
				// keep-alive race, not a backend failure: replaying on a
				// fresh connection does not draw on the retry budget (as
				// net/http's Transport does).
				if bc.reused {
					p.bal.NoteFreeRetry()
					exclude, staleRetry = be, true
					continue
				}
				if p.bal.TryRetry() {
					if retried {
						p.bal.RetryDone()
					}
					retried, exclude = true, be
					continue
				}
			}
			status := 502
			if timeout {
				status = 504
			}
			if hasBody && werr != nil {
				// Part of the body may be unread: the connection cannot
				// carry another request.
				rc.reply(status, lastMsg, true)
				return false
			}
			rc.reply(status, lastMsg, !keep)
			return keep
		}
		// Response head to the client.
		rc.bw.Write(resp.line)
		rc.bw.Write(crlf)
		writeHeaders(rc.bw, &resp, false)
		noBody := isHead || resp.status == 204 || resp.status == 304
		closeDelimited := !noBody && !resp.chunked && resp.length < 0
		if !keep || closeDelimited {
			rc.bw.WriteString("Connection: close\r\n")
		} else if h.minor == 0 {
			rc.bw.WriteString("Connection: keep-alive\r\n")
		}
		rc.bw.WriteString("\r\n")
		bc.br.Discard(len(resp.raw))
		var cerr error
		refresh := func() { bc.refresh(p.cfg.ResponseHeaderTimeout) }
		switch {
		case noBody:
		case resp.chunked:
			cerr = copyChunked(rc.bw, bc.br, refresh)
		case resp.length >= 0:
			cerr = copyN(rc.bw, bc.br, resp.length, refresh)
		default:
			cerr = copyUntilEOF(rc.bw, bc.br, refresh)
		}
		reusable := cerr == nil && !closeDelimited && !resp.connClose && resp.minor == 1 && h.minor == 1
		o := balance.Outcome{Status: resp.status, Latency: time.Since(start)}
		if cerr != nil {
			o.Failed, o.Err = true, "backend "+be.Addr+": "+cerr.Error()
		}
		p.bal.Done(be, o)
		if reusable {
			bc.reused = false
			up.raw.put(bc)
		} else {
			bc.c.Close()
		}
		return cerr == nil && !closeDelimited
	}
}

// readResponseHead reads the final response head, forwarding 1xx
// informational responses (other than 101) to the client.
func readResponseHead(bc *bconn, resp *head, rc *rawClient, upgrade bool) error {
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
		rc.bw.Write(raw)
		bc.br.Discard(n)
	}
}

// copyN copies exactly n bytes from src to dst through src's buffer.
// refresh, when set, runs before src is read from the network: it moves
// the read deadline so a timeout bounds each stall, not the whole body.
func copyN(dst *bufio.Writer, src *bufio.Reader, n int64, refresh func()) error {
	for n > 0 {
		if src.Buffered() == 0 {
			if err := dst.Flush(); err != nil {
				return err
			}
			if refresh != nil {
				refresh()
			}
			if _, err := src.Peek(1); err != nil {
				return unexpected(err)
			}
		}
		buf, _ := src.Peek(int(min(int64(src.Buffered()), n)))
		if _, err := dst.Write(buf); err != nil {
			return err
		}
		src.Discard(len(buf))
		n -= int64(len(buf))
	}
	return nil
}

func copyUntilEOF(dst *bufio.Writer, src *bufio.Reader, refresh func()) error {
	for {
		if src.Buffered() == 0 {
			if err := dst.Flush(); err != nil {
				return err
			}
			refresh()
			if _, err := src.Peek(1); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
		}
		buf, _ := src.Peek(src.Buffered())
		if _, err := dst.Write(buf); err != nil {
			return err
		}
		src.Discard(len(buf))
	}
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// copyChunked copies a chunked body verbatim (sizes, extensions, trailers),
// flushing dst whenever src has nothing buffered so streams stay live.
func copyChunked(dst *bufio.Writer, src *bufio.Reader, refresh func()) error {
	for {
		line, err := readLine(dst, src, refresh)
		if err != nil {
			return err
		}
		sz := line
		if i := bytes.IndexByte(sz, ';'); i >= 0 {
			sz = sz[:i]
		}
		size, err := strconv.ParseInt(string(trimOWS(bytes.TrimRight(sz, "\r\n"))), 16, 64)
		if err != nil || size < 0 {
			return errors.New("malformed chunk size")
		}
		if _, err := dst.Write(line); err != nil {
			return err
		}
		if size == 0 {
			// Trailer section: lines until an empty one.
			for {
				t, err := readLine(dst, src, refresh)
				if err != nil {
					return err
				}
				if _, err := dst.Write(t); err != nil {
					return err
				}
				if len(t) <= 2 {
					return nil
				}
			}
		}
		if err := copyN(dst, src, size+2, refresh); err != nil {
			return err
		}
	}
}

// readLine returns the next line including its LF, consuming it.
func readLine(dst *bufio.Writer, src *bufio.Reader, refresh func()) ([]byte, error) {
	if src.Buffered() == 0 {
		if err := dst.Flush(); err != nil {
			return nil, err
		}
		if refresh != nil {
			refresh()
		}
	}
	line, err := src.ReadSlice('\n')
	if err != nil {
		return nil, unexpected(err)
	}
	return line, nil
}

// rawUpgrade passes an Upgrade request through on a fresh backend
// connection and, on 101, copies bytes both ways until either side closes.
func (p *Proxy) rawUpgrade(rc *rawClient, h *head, n int) {
	be, err := p.bal.Pick(nil)
	if err != nil {
		rc.reply(503, err.Error(), true)
		return
	}
	up := be.Transport.(*upstream)
	start := time.Now()
	c, err := net.DialTimeout("tcp", be.Addr, p.cfg.ConnectTimeout)
	if err != nil {
		msg := describeDial(be.Addr, err)
		p.bal.Done(be, balance.Outcome{ConnectFailed: true, Failed: true, Err: msg})
		rc.reply(502, msg+" (fleet "+p.bal.Config().Fleet+")", true)
		return
	}
	defer c.Close()
	rc.c.SetReadDeadline(time.Time{})
	bw := bufio.NewWriter(c)
	bw.Write(h.line)
	bw.Write(crlf)
	writeHeaders(bw, h, true)
	fmt.Fprintf(bw, "X-Forwarded-For: %s\r\n\r\n", rc.ip)
	rc.br.Discard(n)
	var status int
	if err := bw.Flush(); err == nil {
		bc := &bconn{c: c, br: bufio.NewReader(c), bw: bw}
		var resp head
		if err := readResponseHead(bc, &resp, rc, true); err == nil {
			status = resp.status
			rc.bw.Write(resp.raw)
			bc.br.Discard(len(resp.raw))
			if err := rc.bw.Flush(); err == nil && resp.status == 101 {
				s := up.track(func(error) { c.Close(); rc.c.Close() })
				done := make(chan struct{}, 2)
				go func() { rc.br.WriteTo(c); closeWrite(c); done <- struct{}{} }()
				go func() { bc.br.WriteTo(rc.c); closeWrite(rc.c); done <- struct{}{} }()
				<-done
				<-done
				up.untrack(s)
			} else if err == nil {
				copyN(rc.bw, bc.br, max(resp.length, 0), nil)
				rc.bw.Flush()
			}
		}
	}
	p.bal.Done(be, balance.Outcome{Status: status, Latency: time.Since(start)})
}

func (p *Proxy) trackRaw(c net.Conn, add bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		p.rawConns[c] = struct{}{}
		p.rawWG.Add(1)
		return
	}
	delete(p.rawConns, c)
	p.rawWG.Done()
}
