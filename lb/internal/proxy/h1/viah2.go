package h1

//lint:file-ignore SA1019 per-backend graceful GOAWAY on drain needs x/net/http2's ClientConnPool and ClientConn.Shutdown, which net/http does not expose.

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/http2"

	"github.com/shoal-dev/shoal/lb/internal/balance"
	"github.com/shoal-dev/shoal/lb/internal/proxy/upstream"
)

// exchangeViaH2 sends an HTTP/1.1 client's request to an h2c or h2 backend
// (--backend-protocol h2c|h2) through x/net/http2's Transport. Bodies are
// buffered both ways and trailers dropped: this bridge is for plain HTTP
// APIs behind h2 backends, not for streaming (gRPC clients speak HTTP/2 and
// take the frame engine). It returns false when the client connection must
// close.
func (e *Engine) exchangeViaH2(cl *client, h *head, n int, keep bool) bool {
	hdr := make(http.Header)
	var xff string
	eachField(h.raw[len(h.line)+2:len(h.raw)-2], func(name, val []byte) bool {
		switch {
		case upstream.EqualFold(name, "x-forwarded-for"):
			xff = string(val) + ", "
		case !upstream.Hop(name) && !h.nominated(name) && !upstream.EqualFold(name, "host") && !upstream.EqualFold(name, "trailer") &&
			!upstream.EqualFold(name, "expect") && !upstream.EqualFold(name, "content-length"):
			hdr.Add(string(name), string(val))
		}
		return true
	})
	hdr.Set("X-Forwarded-For", xff+cl.ip)
	method, target, host := string(h.method), string(h.target), string(h.host)
	cl.br.Discard(n)
	body, err := readBody(cl.br, h, e.cfg.MaxBodyBytes, false, cl.refresh)
	cl.deadline = time.Time{}
	if err != nil {
		status := 400
		if errors.Is(err, errBodyTooLarge) {
			status, err = 413, errors.New("request body exceeds max-body-bytes "+strconv.Itoa(e.cfg.MaxBodyBytes))
		}
		cl.reply(status, err.Error(), true)
		return false
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		cl.reply(400, "bad request URI: "+err.Error(), !keep)
		return keep
	}
	u.Scheme = "http"
	if e.cfg.BackendTLS != nil {
		u.Scheme = "https"
	}
	resp, fail := e.roundTripH2(&http.Request{
		Method: method, URL: u, Proto: "HTTP/2.0", ProtoMajor: 2, Header: hdr, Host: host,
		ContentLength: int64(len(body)), Body: http.NoBody,
	}, body)
	if fail != nil {
		cl.reply(fail.Status, fail.Msg, !keep)
		return keep
	}
	bw := cl.bw
	bw.WriteString("HTTP/1.1 " + strconv.Itoa(resp.Status) + " " + http.StatusText(resp.Status) + "\r\n")
	for _, f := range resp.Header {
		bw.WriteString(f[0] + ": " + f[1] + "\r\n")
	}
	bw.WriteString("Content-Length: " + strconv.Itoa(len(resp.Body)) + "\r\n")
	if !keep {
		bw.WriteString("Connection: close\r\n")
	} else if h.minor == 0 {
		bw.WriteString("Connection: keep-alive\r\n")
	}
	bw.WriteString("\r\n")
	if method != "HEAD" {
		bw.Write(resp.Body)
	}
	return true
}

// roundTripH2 sends out (with body) to a picked backend over HTTP/2 and
// reads the whole response.
func (e *Engine) roundTripH2(out *http.Request, body []byte) (*Response, *Failure) {
	a := e.bal.Attempt()
	defer a.Close()
	for {
		be, err := a.Pick()
		if err != nil {
			if a.Tried() {
				return nil, &Failure{502, a.Last()}
			}
			return nil, &Failure{503, err.Error()}
		}
		up := upstream.Of(be)
		ctx, cancel := context.WithCancelCause(context.Background())
		s := up.Track(cancel)
		start := time.Now()
		try := out.WithContext(ctx)
		try.URL.Host = be.Addr
		if len(body) > 0 {
			try.Body = io.NopCloser(bytes.NewReader(body))
		}
		resp, err := up.H2.(*h2Pool).t.RoundTrip(try)
		if err != nil {
			up.Untrack(s)
			cancel(nil)
			retry := balance.NoRetry
			switch {
			case upstream.IsDialErr(err):
				retry = balance.Unsent
			case upstream.Idempotent(out.Method) && len(body) == 0:
				retry = balance.Replay
			}
			o := balance.Outcome{ConnectFailed: retry == balance.Unsent, Failed: true, Latency: time.Since(start), Err: e.describe(be, err, ctx)}
			if a.Failed(be, o, retry) {
				continue
			}
			status := 502
			if errors.Is(err, context.DeadlineExceeded) {
				status = 504
			}
			return nil, &Failure{status, a.Last()}
		}
		b, rerr := io.ReadAll(io.LimitReader(resp.Body, int64(e.cfg.MaxBodyBytes)+1))
		resp.Body.Close()
		up.Untrack(s)
		cancel(nil)
		if rerr == nil && len(b) > e.cfg.MaxBodyBytes {
			rerr = errors.New("response body exceeds max-body-bytes " + strconv.Itoa(e.cfg.MaxBodyBytes))
		}
		o := balance.Outcome{Status: resp.StatusCode, Latency: time.Since(start)}
		if rerr != nil {
			o.Failed, o.Err = true, e.describe(be, rerr, ctx)
			e.bal.Done(be, o)
			return nil, &Failure{502, o.Err + " (fleet " + e.bal.Config().Fleet + ")"}
		}
		e.bal.Done(be, o)
		r := &Response{Status: resp.StatusCode, Body: b}
		for k, vv := range resp.Header {
			if upstream.Hop(k) || k == "Content-Length" {
				continue
			}
			for _, v := range vv {
				r.Header = append(r.Header, [2]string{k, v})
			}
		}
		return r, nil
	}
}

func (e *Engine) describe(be *balance.Backend, err error, ctx context.Context) string {
	if errors.Is(context.Cause(ctx), upstream.ErrDrainDeadline) {
		return "backend " + be.Addr + " draining: drain deadline reached"
	}
	return upstream.Describe(be.Addr, err)
}

// h2Pool is an http2.ClientConnPool holding one backend's connections, so a
// drain can GOAWAY exactly that backend's connections.
type h2Pool struct {
	up *upstream.Upstream
	t  *http2.Transport

	mu    sync.Mutex
	conns []*http2.ClientConn
}

var (
	_ http2.ClientConnPool = (*h2Pool)(nil)
	_ upstream.Pool        = (*h2Pool)(nil)
)

func newH2Pool(up *upstream.Upstream, cfg Config) *h2Pool {
	p := &h2Pool{up: up}
	p.t = &http2.Transport{
		AllowHTTP:          cfg.BackendTLS == nil,
		ReadIdleTimeout:    30 * time.Second,
		PingTimeout:        5 * time.Second,
		MaxHeaderListSize:  uint32(cfg.MaxHeaderBytes) * 4,
		DisableCompression: true,
		ConnPool:           p,
	}
	return p
}

func (p *h2Pool) GetClientConn(req *http.Request, _ string) (*http2.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, cc := range p.conns {
		if cc.ReserveNewRequest() {
			return cc, nil
		}
	}
	// Dialing under the lock keeps a burst from opening one connection per
	// request; other backends are not affected.
	c, err := p.up.DialH2(req.Context())
	if err != nil {
		return nil, err
	}
	addr := p.up.Backend.Addr
	cc, err := p.t.NewClientConn(c)
	if err != nil {
		c.Close()
		return nil, &upstream.DialError{Addr: addr, Err: err}
	}
	if !cc.ReserveNewRequest() {
		cc.Close()
		return nil, &upstream.DialError{Addr: addr, Err: errors.New("new connection refused a stream")}
	}
	p.conns = append(p.conns, cc)
	return cc, nil
}

func (p *h2Pool) MarkDead(cc *http2.ClientConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, c := range p.conns {
		if c == cc {
			p.conns = append(p.conns[:i], p.conns[i+1:]...)
			return
		}
	}
}

// Shutdown sends GOAWAY on every connection and waits for their streams
// until ctx ends.
func (p *h2Pool) Shutdown(ctx context.Context) {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, cc := range conns {
		wg.Go(func() {
			if err := cc.Shutdown(ctx); err != nil {
				cc.Close()
			}
		})
	}
	wg.Wait()
}

// Conns is the number of open connections.
func (p *h2Pool) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}
