package h2mux

import (
	"bytes"
	"errors"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/shoal-dev/shoal/lb/internal/balance"
	"github.com/shoal-dev/shoal/lb/internal/proxy/h1"
	"github.com/shoal-dev/shoal/lb/internal/proxy/upstream"
)

// pstream is one proxied HTTP/2 stream.
type pstream struct {
	e    *Engine
	d    *muxConn
	u    *muxConn
	be   *balance.Backend
	up   *upstream.Upstream
	tr   *upstream.Stream
	grpc bool
	// local streams are answered by the proxy itself (errors, HTTP/1.1
	// backends).
	local   bool
	start   time.Time
	timer   *time.Timer
	body    bytes.Buffer // local: request body
	reqHdrs []hpack.HeaderField

	toC half // guarded by d.mu
	toB half // guarded by u.mu

	status     atomic.Int32
	grpcUnavl  atomic.Bool
	failed     atomic.Bool
	failMsg    atomic.Pointer[string]
	done       atomic.Bool
	reqEnded   atomic.Bool
	respEnded  atomic.Bool
	reqUnacked int64 // client bytes forwarded, not yet granted (d.mu)
	resUnacked int64 // backend bytes forwarded, not yet granted (u.mu)
}

// skipField reports whether a field is not forwarded: the shared
// hop-by-hop list (upstream/hop.go), except "te: trailers", which gRPC
// needs end to end and RFC 9113 8.2.2 allows.
func skipField(f hpack.HeaderField) bool {
	return upstream.Hop(f.Name) && !(f.Name == "te" && f.Value == "trailers")
}

// filterFields drops what skipField says, copying only when it must.
func filterFields(in []hpack.HeaderField) []hpack.HeaderField {
	clean := true
	for _, f := range in {
		if skipField(f) {
			clean = false
			break
		}
	}
	if clean {
		return in // the common case: nothing to drop, nothing to copy
	}
	out := make([]hpack.HeaderField, 0, len(in))
	for _, f := range in {
		if skipField(f) {
			continue
		}
		out = append(out, f)
	}
	if len(out) == len(in) {
		return in
	}
	return out
}

// responseEnded runs when END_STREAM arrived from the backend.
func (e *Engine) responseEnded(s *pstream, fs *flushSet) {
	s.respEnded.Store(true)
	if !s.reqEnded.Load() {
		// The server finished first: stop the client's upload (RFC 9113
		// 8.1) and tell the backend we are done too.
		d := s.d
		d.mu.Lock()
		if !d.closed && len(s.toC.q) == 0 {
			d.wf.WriteRSTStream(s.toC.id, http2.ErrCodeNo)
		}
		d.mu.Unlock()
		e.resetBackend(s, http2.ErrCodeCancel, fs)
	}
	e.finish(s, false)
}

// resetBackend sends RST_STREAM to the backend unless it ended the stream.
func (e *Engine) resetBackend(s *pstream, code http2.ErrCode, fs *flushSet) {
	u := s.u
	if u == nil {
		return
	}
	u.mu.Lock()
	if !u.closed && u.streams[s.toB.id] == s && s.toB.sent {
		u.wf.WriteRSTStream(s.toB.id, code)
	}
	u.mu.Unlock()
	u.after(fs)
}

// failStream ends s with an error made up by the proxy: a gRPC status
// (trailers) for gRPC, an HTTP status or RST_STREAM otherwise.
func (e *Engine) failStream(s *pstream, code, status int, msg string, fs *flushSet) {
	if s.done.Load() {
		return
	}
	s.failed.Store(true)
	s.failMsg.Store(&msg)
	e.resetBackend(s, http2.ErrCodeCancel, fs)
	e.localReply(s, status, code, msg, fs)
}

// localReply answers s from the proxy and finishes it.
func (e *Engine) localReply(s *pstream, status, code int, msg string, fs *flushSet) {
	d := s.d
	d.mu.Lock()
	if s.done.Load() || s.toC.ended {
		d.mu.Unlock()
		e.finish(s, true)
		return
	}
	switch {
	case s.grpc && !s.toC.sent && len(s.toC.q) == 0:
		d.pushLocked(s, qitem{isHdr: true, end: true, hdrs: []hpack.HeaderField{
			{Name: ":status", Value: "200"},
			{Name: "content-type", Value: "application/grpc"},
			{Name: "grpc-status", Value: strconv.Itoa(code)},
			{Name: "grpc-message", Value: upstream.EncodeGRPCMessage(msg)},
		}})
	case s.grpc:
		// Headers went out already: end with trailers (after queued data).
		d.pushLocked(s, qitem{isHdr: true, end: true, hdrs: []hpack.HeaderField{
			{Name: "grpc-status", Value: strconv.Itoa(code)},
			{Name: "grpc-message", Value: upstream.EncodeGRPCMessage(msg)},
		}})
	case !s.toC.sent && len(s.toC.q) == 0:
		body := msg + "\n"
		d.pushLocked(s, qitem{isHdr: true, hdrs: []hpack.HeaderField{
			{Name: ":status", Value: strconv.Itoa(status)},
			{Name: "content-type", Value: upstream.ContentTypeText},
			{Name: "content-length", Value: strconv.Itoa(len(body))},
		}})
		d.pushLocked(s, qitem{data: []byte(body), end: true})
	default:
		if !d.closed {
			d.wf.WriteRSTStream(s.toC.id, http2.ErrCodeInternal)
		}
		s.toC.ended = true
	}
	if !s.reqEnded.Load() && len(s.toC.q) == 0 && !d.closed {
		d.wf.WriteRSTStream(s.toC.id, http2.ErrCodeNo)
	}
	d.mu.Unlock()
	d.after(fs)
	e.finish(s, false)
}

// finish releases s once: removes it from both connections, stops its timer
// and tells the balancer how it went. Queued output towards the client is
// still written (the client connection keeps s until its queue drains).
func (e *Engine) finish(s *pstream, reset bool) {
	if !s.done.CompareAndSwap(false, true) {
		return
	}
	d := s.d
	d.mu.Lock()
	droppedC := 0
	if reset || len(s.toC.q) == 0 {
		droppedC = queuedBytes(&s.toC)
		s.toC.q = nil
		delete(d.streams, s.toC.id)
		delete(d.blocked, s)
	}
	d.lastActive = time.Now()
	d.mu.Unlock()
	if u := s.u; u != nil {
		u.mu.Lock()
		// Output dropped with the stream still used the senders' connection
		// windows: give that credit back, or the connections would starve.
		droppedB := queuedBytes(&s.toB)
		s.toB.q = nil
		u.grantLocked(s.toB.id, nil, droppedC, false)
		if s.timer != nil {
			s.timer.Stop()
		}
		if u.streams[s.toB.id] == s {
			delete(u.streams, s.toB.id)
			delete(u.blocked, s)
		}
		closeNow := u.goaway && len(u.streams) == 0 && !u.closed
		if closeNow {
			u.bw.Flush()
			u.failLocked(errors.New("drained"))
		}
		u.mu.Unlock()
		if droppedC > 0 {
			u.after(nil)
		}
		if droppedB > 0 {
			d.mu.Lock()
			d.grantLocked(s.toC.id, nil, droppedB, false)
			d.mu.Unlock()
			d.after(nil)
		}
	}
	if s.tr != nil {
		s.up.Untrack(s.tr)
	}
	if s.be == nil || s.local {
		return
	}
	o := balance.Outcome{Status: int(s.status.Load()), Latency: time.Since(s.start)}
	if s.grpcUnavl.Load() {
		o.Status = 503
	}
	if s.failed.Load() {
		o.Failed = true
		if m := s.failMsg.Load(); m != nil {
			o.Err = *m
		} else {
			o.Err = "backend " + s.be.Addr + ": stream reset"
		}
	}
	e.bal.Done(s.be, o)
}

// bridgeH1 answers a non-gRPC stream from an HTTP/1.1 backend, once the
// request body is whole.
func (e *Engine) bridgeH1(s *pstream) {
	req := &h1.Request{Body: s.body.Bytes()}
	if host, _, err := net.SplitHostPort(s.d.c.RemoteAddr().String()); err == nil {
		req.RemoteIP = host
	}
	host := ""
	for _, f := range s.reqHdrs {
		switch f.Name {
		case ":method":
			req.Method = f.Value
		case ":path":
			req.Path = f.Value
		case ":authority":
			req.Authority = f.Value
		case ":scheme":
		case "host":
			host = f.Value
		default:
			req.Header = append(req.Header, [2]string{f.Name, f.Value})
		}
	}
	if req.Authority == "" {
		req.Authority = host
	}
	resp, fail := e.cfg.H1.RoundTrip(req)
	if fail != nil {
		e.localReply(s, fail.Status, upstream.GRPCUnavailable, fail.Msg, nil)
		return
	}
	fields := make([]hpack.HeaderField, 0, len(resp.Header)+2)
	fields = append(fields, hpack.HeaderField{Name: ":status", Value: strconv.Itoa(resp.Status)})
	for _, h := range resp.Header {
		fields = append(fields, hpack.HeaderField{Name: h[0], Value: h[1]})
	}
	fields = append(fields, hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(len(resp.Body))})
	d := s.d
	d.mu.Lock()
	if !s.done.Load() {
		d.pushLocked(s, qitem{isHdr: true, hdrs: fields, end: len(resp.Body) == 0})
		if len(resp.Body) > 0 {
			d.pushLocked(s, qitem{data: resp.Body, end: true})
		}
	}
	d.mu.Unlock()
	d.after(nil)
	e.finish(s, false)
}
