package proxy

//lint:file-ignore SA1019 RoundTrip on the per-backend x/net/http2.Transport whose ConnPool lets a drain GOAWAY one backend's connections.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/valyala/fasthttp"

	"github.com/shoal-dev/shoal/lb/internal/balance"
)

// gRPC status codes the proxy makes up itself.
const (
	grpcUnavailable      = 14
	grpcDeadlineExceeded = 4
	grpcResourceExhaust  = 8
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func isGRPC(ct string) bool { return strings.HasPrefix(ct, "application/grpc") }

// ServeHTTP handles every stream of an HTTP/2 client connection.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	grpc := isGRPC(r.Header.Get("Content-Type"))
	if !grpc && p.cfg.BackendProtocol == HTTP1 {
		p.serveH2ViaH1(w, r)
		return
	}
	p.forwardH2(w, r, grpc)
}

// countingBody records whether any request byte was handed to a backend,
// which decides whether a failed gRPC call may go to another backend.
type countingBody struct {
	rc io.ReadCloser
	n  int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n += int64(n)
	return n, err
}

func (b *countingBody) Close() error { return b.rc.Close() }

// h2call is one attempt that got response headers.
type h2call struct {
	be    *balance.Backend
	up    *upstream
	s     *stream
	start time.Time
	resp  *http.Response
}

// roundTripH2 sends out to a picked backend over HTTP/2, retrying on another
// backend when the request never reached the first one. retryAfterSend
// allows a retry after the request was sent (idempotent, bodiless).
func (p *Proxy) roundTripH2(out *http.Request, body *countingBody, cancel context.CancelCauseFunc, retryAfterSend bool) (*h2call, error) {
	var (
		exclude *balance.Backend
		retried bool
		last    error
	)
	defer func() {
		if retried {
			p.bal.RetryDone()
		}
	}()
	for attempt := 0; ; attempt++ {
		be, err := p.bal.Pick(exclude)
		if err != nil {
			if last != nil {
				return nil, last
			}
			return nil, err
		}
		up := be.Transport.(*upstream)
		out.URL.Host = be.Addr
		s := up.track(cancel)
		start := time.Now()
		resp, err := up.h2.t.RoundTrip(out)
		if err == nil {
			return &h2call{be: be, up: up, s: s, start: start, resp: resp}, nil
		}
		up.untrack(s)
		connect := isDialErr(err)
		msg := p.describe(be, err)
		p.bal.Done(be, balance.Outcome{ConnectFailed: connect, Failed: true, Latency: time.Since(start), Err: msg})
		last = &upstreamError{msg: msg + " (fleet " + p.bal.Config().Fleet + ")", err: err}
		if connect && attempt < 2 && out.Context().Err() == nil {
			p.bal.NoteFreeRetry() // nothing was sent: no budget needed
			exclude = be
			continue
		}
		unsent := (body == nil || body.n == 0) && retryAfterSend
		if unsent && attempt < 2 && out.Context().Err() == nil && p.bal.TryRetry() {
			if retried {
				p.bal.RetryDone()
			}
			retried = true
			exclude = be
			continue
		}
		return nil, &upstreamError{msg: msg + " (fleet " + p.bal.Config().Fleet + ")", err: err}
	}
}

type upstreamError struct {
	msg string
	err error
}

func (e *upstreamError) Error() string { return e.msg }
func (e *upstreamError) Unwrap() error { return e.err }

// forwardH2 proxies one HTTP/2 stream (a gRPC call of any kind, or an h2
// request) to an h2 backend, streaming both ways and carrying trailers.
func (p *Proxy) forwardH2(w http.ResponseWriter, r *http.Request, grpc bool) {
	ctx := r.Context()
	if grpc {
		if v := r.Header.Get("Grpc-Timeout"); v != "" {
			if d, ok := parseGRPCTimeout(v); ok {
				var c context.CancelFunc
				ctx, c = context.WithTimeout(ctx, d)
				defer c()
			}
		}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var body *countingBody
	var rbody io.ReadCloser = http.NoBody
	if r.Body != nil && r.Body != http.NoBody && !(r.ContentLength == 0 && !grpc) {
		body = &countingBody{rc: r.Body}
		rbody = body
	}
	scheme := "http"
	if p.cfg.BackendTLS != nil {
		scheme = "https"
	}
	out := (&http.Request{
		Method:        r.Method,
		URL:           &url.URL{Scheme: scheme, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery},
		Proto:         "HTTP/2.0",
		ProtoMajor:    2,
		Header:        r.Header,
		Body:          rbody,
		ContentLength: r.ContentLength,
		Host:          r.Host,
		Trailer:       r.Trailer,
	}).WithContext(ctx)
	retryAfterSend := grpc || (body == nil && idempotent([]byte(r.Method)))
	call, err := p.roundTripH2(out, body, cancel, retryAfterSend)
	if err != nil {
		p.h2Error(w, grpc, err, context.Cause(ctx))
		return
	}
	defer call.up.untrack(call.s)
	resp := call.resp
	h := w.Header()
	for k, vv := range resp.Header {
		h[k] = vv
	}
	w.WriteHeader(resp.StatusCode)
	bp := bufPool.Get().(*[]byte)
	buf := *bp
	fl, _ := w.(http.Flusher)
	var copyErr error
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				copyErr = werr
				break
			}
			if fl != nil {
				fl.Flush()
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			copyErr = err
			break
		}
	}
	bufPool.Put(bp)
	resp.Body.Close()
	status := resp.StatusCode
	if copyErr == nil {
		for k, vv := range resp.Trailer {
			h[http.TrailerPrefix+k] = vv
		}
		if grpc && (resp.Trailer.Get("Grpc-Status") == "14" || resp.Header.Get("Grpc-Status") == "14") {
			status = http.StatusServiceUnavailable // counts towards ejection
		}
	} else if grpc {
		code, msg := grpcFailure(call.be.Addr, copyErr, context.Cause(ctx))
		h[http.TrailerPrefix+"Grpc-Status"] = []string{strconv.Itoa(code)}
		h[http.TrailerPrefix+"Grpc-Message"] = []string{encodeGRPCMessage(msg)}
	}
	o := balance.Outcome{Status: status, Latency: time.Since(call.start)}
	if copyErr != nil && r.Context().Err() == nil {
		o.Failed = true
		o.Err = "backend " + call.be.Addr + ": " + copyErr.Error()
	}
	p.bal.Done(call.be, o)
}

func grpcFailure(addr string, err, cause error) (int, string) {
	switch {
	case errors.Is(cause, errDrainDeadline):
		return grpcUnavailable, "backend " + addr + " draining: drain deadline reached"
	case errors.Is(cause, context.DeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return grpcDeadlineExceeded, "grpc-timeout reached at shoal-lb waiting for backend " + addr
	}
	return grpcUnavailable, "backend " + addr + ": " + err.Error()
}

func (p *Proxy) h2Error(w http.ResponseWriter, grpc bool, err, cause error) {
	status := http.StatusBadGateway
	code := grpcUnavailable
	msg := err.Error()
	switch {
	case errors.Is(err, balance.ErrNoBackend):
		status = http.StatusServiceUnavailable
	case errors.Is(cause, context.DeadlineExceeded):
		status, code = http.StatusGatewayTimeout, grpcDeadlineExceeded
		msg = "grpc-timeout reached at shoal-lb: " + msg
	case errors.Is(err, context.DeadlineExceeded):
		status, code = http.StatusGatewayTimeout, grpcDeadlineExceeded
	}
	if !grpc {
		w.Header().Set("Content-Type", contentTypeTxt)
		w.WriteHeader(status)
		io.WriteString(w, msg+"\n")
		return
	}
	writeGRPCError(w, code, msg)
}

// writeGRPCError sends a trailers-only gRPC response.
func writeGRPCError(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Status", strconv.Itoa(code))
	h.Set("Grpc-Message", encodeGRPCMessage(msg))
	w.WriteHeader(http.StatusOK)
}

// encodeGRPCMessage percent-encodes as the gRPC HTTP/2 spec asks.
func encodeGRPCMessage(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= ' ' && c <= '~' && c != '%' {
			sb.WriteByte(c)
			continue
		}
		sb.WriteByte('%')
		sb.WriteByte("0123456789ABCDEF"[c>>4])
		sb.WriteByte("0123456789ABCDEF"[c&15])
	}
	return sb.String()
}

// parseGRPCTimeout parses a grpc-timeout header ("100m", "5S", ...).
func parseGRPCTimeout(v string) (time.Duration, bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	unit := map[byte]time.Duration{'H': time.Hour, 'M': time.Minute, 'S': time.Second, 'm': time.Millisecond, 'u': time.Microsecond, 'n': time.Nanosecond}[v[len(v)-1]]
	if unit == 0 {
		return 0, false
	}
	return time.Duration(n) * unit, true
}

// serveH2ViaH1 sends a non-gRPC request from an h2 client to an HTTP/1.1
// backend.
func (p *Proxy) serveH2ViaH1(w http.ResponseWriter, r *http.Request) {
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(r.Method)
	req.SetRequestURI(r.URL.RequestURI())
	req.Header.SetHost(r.Host)
	for k, vv := range r.Header {
		for _, v := range vv {
			req.Header.Add(k, v)
		}
	}
	if r.Body != nil && r.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(r.Body, int64(p.cfg.MaxBodyBytes)+1))
		if err != nil {
			http.Error(w, "reading request body: "+err.Error(), http.StatusBadRequest)
			return
		}
		if len(b) > p.cfg.MaxBodyBytes {
			http.Error(w, "request body exceeds max-body-bytes "+strconv.Itoa(p.cfg.MaxBodyBytes), http.StatusRequestEntityTooLarge)
			return
		}
		req.SetBody(b)
	}
	if status, msg := p.roundTripH1(req, resp, r.RemoteAddr); status != 0 {
		http.Error(w, msg, status)
		return
	}
	h := w.Header()
	for k, v := range resp.Header.All() {
		switch string(k) {
		case "Connection", "Keep-Alive", "Transfer-Encoding", "Content-Length":
			continue
		}
		h.Add(string(k), string(v))
	}
	w.WriteHeader(resp.StatusCode())
	w.Write(resp.Body())
}

// serveH1ViaH2 sends an HTTP/1.1 client's request to an h2/h2c backend
// (--backend-protocol h2c|h2). Bodies are buffered; trailers are dropped.
func (p *Proxy) serveH1ViaH2(ctx *fasthttp.RequestCtx) {
	hdr := make(http.Header)
	for k, v := range ctx.Request.Header.All() {
		switch string(k) {
		case "Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Upgrade", "Host", "Te", "Trailer":
			continue
		}
		hdr.Add(string(k), string(v))
	}
	body := ctx.Request.Body()
	cctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	u, err := url.ParseRequestURI(string(ctx.RequestURI()))
	if err != nil {
		h1Error(ctx, http.StatusBadRequest, "bad request URI: "+err.Error())
		return
	}
	u.Scheme = "http"
	if p.cfg.BackendTLS != nil {
		u.Scheme = "https"
	}
	out := (&http.Request{
		Method: string(ctx.Method()), URL: u, Proto: "HTTP/2.0", ProtoMajor: 2,
		Header: hdr, Host: string(ctx.Host()), ContentLength: int64(len(body)),
		Body: io.NopCloser(strings.NewReader(string(body))),
	}).WithContext(cctx)
	if len(body) == 0 {
		out.Body = http.NoBody
	}
	call, err := p.roundTripH2(out, nil, cancel, idempotent(ctx.Method()))
	if err != nil {
		status := http.StatusBadGateway
		if errors.Is(err, balance.ErrNoBackend) {
			status = http.StatusServiceUnavailable
		}
		h1Error(ctx, status, err.Error())
		return
	}
	defer call.up.untrack(call.s)
	resp := call.resp
	b, rerr := io.ReadAll(io.LimitReader(resp.Body, int64(p.cfg.MaxBodyBytes)))
	resp.Body.Close()
	o := balance.Outcome{Status: resp.StatusCode, Latency: time.Since(call.start)}
	if rerr != nil {
		o.Failed, o.Err = true, "backend "+call.be.Addr+": "+rerr.Error()
	}
	p.bal.Done(call.be, o)
	if rerr != nil {
		h1Error(ctx, http.StatusBadGateway, o.Err)
		return
	}
	ctx.SetStatusCode(resp.StatusCode)
	for k, vv := range resp.Header {
		if k == "Content-Length" {
			continue
		}
		for _, v := range vv {
			ctx.Response.Header.Add(k, v)
		}
	}
	ctx.SetBody(b)
}
