package proxy

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/shoal-dev/shoal/lb/internal/balance"
)

// hopHeaders are removed before forwarding (RFC 9110 7.6.1). Connection
// itself is left to fasthttp, which owns keep-alive on both sides.
var hopHeaders = []string{"Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Proxy-Authorization", "Te", "Trailer", "Upgrade"}

var (
	headerXFF      = []byte("X-Forwarded-For")
	headerUpgrade  = []byte("Upgrade")
	contentTypeTxt = "text/plain; charset=utf-8"
)

func idempotent(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE":
		return true
	}
	return false
}

// serveH1 is the fasthttp handler: one backend pick per request, with a
// retry on another backend when nothing reached the first one.
func (p *Proxy) serveH1(ctx *fasthttp.RequestCtx) {
	req := &ctx.Request
	if len(req.Header.PeekBytes(headerUpgrade)) > 0 && req.Header.ConnectionUpgrade() {
		p.serveUpgrade(ctx)
		return
	}
	if p.cfg.BackendProtocol != HTTP1 {
		p.serveH1ViaH2(ctx)
		return
	}
	if ip := ctx.RemoteIP(); ip != nil {
		ctx.Request.Header.AddBytesK(headerXFF, ip.String())
	}
	if status, msg := p.roundTripH1(&ctx.Request, &ctx.Response, ""); status != 0 {
		h1Error(ctx, status, msg)
		return
	}
	// The backend's keep-alive choice is not the client's.
	ctx.Response.Header.ResetConnectionClose()
}

// roundTripH1 forwards req to an HTTP/1.1 backend, retrying on another
// backend when nothing reached the first one (or, for idempotent requests,
// when the connection died before the first response byte). A non-zero
// status means failure, with msg saying why.
func (p *Proxy) roundTripH1(req *fasthttp.Request, resp *fasthttp.Response, remote string) (status int, msg string) {
	for _, h := range hopHeaders {
		req.Header.Del(h)
	}
	if remote != "" {
		if host, _, err := net.SplitHostPort(remote); err == nil {
			req.Header.AddBytesK(headerXFF, host)
		}
	}
	if u := req.URI(); string(u.Scheme()) == "https" {
		u.SetScheme("http") // TLS ends here; backends speak plain HTTP/1.1
	}
	idem := idempotent(req.Header.Method())
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
	for attempt := 0; ; attempt++ {
		be, err := p.bal.Pick(exclude)
		if err != nil {
			if lastMsg != "" { // nothing left to retry on: say what failed
				return http.StatusBadGateway, lastMsg
			}
			return http.StatusServiceUnavailable, err.Error()
		}
		up := be.Transport.(*upstream)
		start := time.Now()
		err = up.h1.Do(req, resp)
		lat := time.Since(start)
		if err == nil {
			p.bal.Done(be, balance.Outcome{Status: resp.StatusCode(), Latency: lat})
			return 0, ""
		}
		connect := isDialErr(err)
		msg := p.describe(be, err)
		p.bal.Done(be, balance.Outcome{ConnectFailed: connect, Failed: true, Latency: lat, Err: msg})
		lastMsg = msg + " (fleet " + p.bal.Config().Fleet + ")"
		if connect && attempt < 2 {
			p.bal.NoteFreeRetry() // nothing was sent: no budget needed
			exclude = be
			resp.Reset()
			continue
		}
		canRetry := idem && (errors.Is(err, fasthttp.ErrConnectionClosed) || isReset(err))
		if canRetry && attempt < 2 && p.bal.TryRetry() {
			if retried {
				p.bal.RetryDone()
			}
			retried = true
			exclude = be
			resp.Reset()
			continue
		}
		status := http.StatusBadGateway
		if errors.Is(err, fasthttp.ErrTimeout) {
			status = http.StatusGatewayTimeout
		}
		resp.Reset()
		return status, msg + " (fleet " + p.bal.Config().Fleet + ")"
	}
}

func isReset(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		bytes.Contains([]byte(err.Error()), []byte("connection reset"))
}

func (p *Proxy) describe(be *balance.Backend, err error) string {
	switch {
	case isDialErr(err):
		var de *dialError
		if errors.As(err, &de) {
			return de.Error()
		}
		return describeDial(be.Addr, err)
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "backend " + be.Addr + " sent no response within " + p.cfg.ResponseHeaderTimeout.String()
	}
	return "backend " + be.Addr + ": " + err.Error()
}

func h1Error(ctx *fasthttp.RequestCtx, status int, msg string) {
	ctx.Response.Reset()
	ctx.SetStatusCode(status)
	ctx.SetContentType(contentTypeTxt)
	ctx.SetBodyString(msg + "\n")
}

// serveUpgrade passes an Upgrade (WebSocket) request through: the request
// head goes to the backend as received, then bytes are copied both ways.
func (p *Proxy) serveUpgrade(ctx *fasthttp.RequestCtx) {
	be, err := p.bal.Pick(nil)
	if err != nil {
		h1Error(ctx, http.StatusServiceUnavailable, err.Error())
		return
	}
	up := be.Transport.(*upstream)
	start := time.Now()
	bc, err := net.DialTimeout("tcp", be.Addr, p.cfg.ConnectTimeout)
	if err != nil {
		msg := describeDial(be.Addr, err)
		p.bal.Done(be, balance.Outcome{ConnectFailed: true, Err: msg, Latency: time.Since(start)})
		h1Error(ctx, http.StatusBadGateway, msg+" (fleet "+p.bal.Config().Fleet+")")
		return
	}
	var head bytes.Buffer
	head.Write(ctx.Method())
	head.WriteByte(' ')
	head.Write(ctx.RequestURI())
	head.WriteString(" HTTP/1.1\r\n")
	for k, v := range ctx.Request.Header.All() {
		head.Write(k)
		head.WriteString(": ")
		head.Write(v)
		head.WriteString("\r\n")
	}
	head.WriteString("\r\n")
	head.Write(ctx.Request.Body())
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(c net.Conn) {
		sctx, cancel := context.WithCancelCause(context.Background())
		s := up.track(cancel)
		defer func() {
			up.untrack(s)
			cancel(nil)
			p.bal.Done(be, balance.Outcome{Status: http.StatusSwitchingProtocols, Latency: time.Since(start)})
		}()
		if _, err := bc.Write(head.Bytes()); err != nil {
			bc.Close()
			return
		}
		done := make(chan struct{}, 2)
		go func() { io.Copy(bc, c); closeWrite(bc); done <- struct{}{} }()
		go func() { io.Copy(c, bc); closeWrite(c); done <- struct{}{} }()
		select {
		case <-done:
			<-done
		case <-sctx.Done():
		}
		bc.Close()
		c.Close()
	})
}

func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	c.Close()
}
