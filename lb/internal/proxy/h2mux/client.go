package h2mux

import (
	"errors"
	"io"
	"net"
	"strconv"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/shoal-dev/shoal/lb/internal/balance"
	"github.com/shoal-dev/shoal/lb/internal/proxy/upstream"
)

// serveMux serves one HTTP/2 client connection whose preface was peeked.
func (e *Engine) serveMux(c net.Conn) {
	d := newMuxConn(e, clientSide, c)
	pre := make([]byte, len(http2.ClientPreface))
	c.SetReadDeadline(time.Now().Add(e.cfg.HeaderTimeout))
	if _, err := io.ReadFull(d.br, pre); err != nil || string(pre) != http2.ClientPreface {
		c.Close()
		return
	}
	if err := d.writeSettings(); err != nil {
		c.Close()
		return
	}
	e.track(d, true)
	defer e.track(d, false)
	stopIdle := e.watchIdle(d)
	defer stopIdle()
	fs := &flushSet{}
	first := true
	var err error
	for {
		// Writes caused by this batch of frames (to the backends and back
		// to this client) are flushed once, when the next read would
		// block: one write(2) per connection per batch, not per frame.
		if d.br.Buffered() == 0 {
			fs.flush()
		}
		var f http2.Frame
		f, err = d.rf.ReadFrame()
		// Only the first frame is bounded by the header timeout; after it
		// the idle watcher decides, as streams may legitimately be quiet.
		if first {
			c.SetReadDeadline(time.Time{})
			first = false
		}
		if err != nil {
			// A malformed stream costs that stream, not the connection
			// and the other calls multiplexed on it.
			var se http2.StreamError
			if errors.As(err, &se) {
				d.mu.Lock()
				d.wf.WriteRSTStream(se.StreamID, se.Code)
				d.mu.Unlock()
				fs.add(d)
				continue
			}
			break
		}
		var handled bool
		if handled, err = e.controlFrame(d, f, fs); err != nil || handled {
			if err != nil {
				break
			}
			continue
		}
		if err = e.clientFrame(d, f, fs); err != nil {
			break
		}
	}
	fs.flush()
	e.closeClient(d, err)
}

// watchIdle closes d with GOAWAY once it had no stream for the idle
// timeout. A ticker, not a read deadline: the reader must keep reading
// while streams are open but silent (long gRPC streams), and checking a
// quarter-timeout tick is cheaper than moving a deadline per frame.
func (e *Engine) watchIdle(d *muxConn) func() {
	t := time.NewTicker(max(e.cfg.IdleTimeout/4, 10*time.Millisecond))
	stop := make(chan struct{})
	go func() {
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				d.mu.Lock()
				idle := len(d.streams) == 0 && now.Sub(d.lastActive) > e.cfg.IdleTimeout
				if idle && !d.closed {
					d.wf.WriteGoAway(d.lastPeerID, http2.ErrCodeNo, []byte("idle timeout"))
					d.bw.Flush()
					d.failLocked(errors.New("idle timeout"))
				}
				d.mu.Unlock()
			}
		}
	}()
	return func() { close(stop) }
}

// closeClient ends the connection and every stream on it. Backends are
// told with RST_STREAM(CANCEL) so their work stops too; the backend
// connections stay, as they carry other clients' streams.
func (e *Engine) closeClient(d *muxConn, err error) {
	d.mu.Lock()
	if err != nil && !d.closed {
		var ce http2.ConnectionError
		if errors.As(err, &ce) {
			d.wf.WriteGoAway(d.lastPeerID, http2.ErrCode(ce), nil)
			d.bw.Flush()
		}
	}
	d.closed = true
	d.c.Close()
	ss := make([]*pstream, 0, len(d.streams))
	for _, s := range d.streams {
		ss = append(ss, s)
	}
	d.mu.Unlock()
	for _, s := range ss {
		e.resetBackend(s, http2.ErrCodeCancel, nil)
		e.finish(s, true)
	}
}

// clientFrame handles a stream-level frame from a client. A HEADERS frame
// on a known stream is its trailers; on a new one it opens the stream.
func (e *Engine) clientFrame(d *muxConn, f http2.Frame, fs *flushSet) error {
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		d.mu.Lock()
		s := d.streams[f.StreamID]
		d.mu.Unlock()
		if s != nil {
			return e.clientTrailers(s, f, fs)
		}
		return e.newStream(d, f, fs)
	case *http2.DataFrame:
		return e.clientData(d, f, fs)
	case *http2.RSTStreamFrame:
		d.mu.Lock()
		s := d.streams[f.StreamID]
		d.mu.Unlock()
		if s != nil {
			e.resetBackend(s, http2.ErrCodeCancel, fs)
			e.finish(s, true)
		}
	case *http2.GoAwayFrame:
		d.mu.Lock()
		d.goaway = true
		d.mu.Unlock()
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	return nil
}

// newStream picks a backend for a new client stream and sends its headers.
func (e *Engine) newStream(d *muxConn, f *http2.MetaHeadersFrame, fs *flushSet) error {
	id := f.StreamID
	d.mu.Lock()
	if id%2 == 0 || id <= d.lastPeerID {
		d.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	d.lastPeerID = id
	d.lastActive = time.Now()
	// REFUSED_STREAM, not an error status: the client knows nothing was
	// processed and may retry (gRPC does so transparently).
	if d.goaway || uint32(len(d.streams)) >= e.cfg.MaxConcurrentStreams {
		d.wf.WriteRSTStream(id, http2.ErrCodeRefusedStream)
		d.mu.Unlock()
		fs.add(d)
		return nil
	}
	s := &pstream{e: e, d: d, start: time.Now()}
	s.toC = half{id: id, win: d.peerInitWin}
	d.streams[id] = s
	d.mu.Unlock()
	s.grpc = upstream.IsGRPC(headerValue(f.Fields, "content-type"))
	if f.Truncated {
		e.localReply(s, 431, upstream.GRPCResourceExhausted, "request headers exceed max-header-bytes "+strconv.Itoa(e.cfg.MaxHeaderBytes), fs)
		return nil
	}
	ended := f.StreamEnded()
	s.reqEnded.Store(ended)
	// Plain HTTP for HTTP/1.1 backends is answered through h1 once the
	// body is whole: the bridge buffers, as it must re-frame both ways.
	if !s.grpc && e.cfg.H1 != nil {
		s.local = true
		s.reqHdrs = f.Fields
		if ended {
			go e.bridgeH1(s)
		}
		return nil
	}
	// The client's HPACK-decoded fields are re-encoded with the backend
	// connection's own HPACK state; :scheme says how we reach the backend.
	fields := filterFields(f.Fields)
	if e.cfg.BackendTLS {
		fields = setPseudo(fields, ":scheme", "https")
	} else {
		fields = setPseudo(fields, ":scheme", "http")
	}
	u, err := e.attach(s)
	if err != nil {
		e.localReply(s, err.Status, upstream.GRPCUnavailable, err.Msg, fs)
		return nil
	}
	u.mu.Lock()
	u.pushLocked(s, qitem{isHdr: true, hdrs: fields, end: ended})
	u.mu.Unlock()
	fs.add(u)
	if s.done.Load() { // ended (backend lost) while we were attaching
		return nil
	}
	if v := headerValue(f.Fields, "grpc-timeout"); s.grpc && v != "" {
		if dur, ok := upstream.ParseGRPCTimeout(v); ok {
			// The deadline runs from the request's arrival, not from the
			// end of a dial: the client's clock started before either.
			u.mu.Lock() // s.timer is read by finish under u.mu
			s.timer = time.AfterFunc(dur-time.Since(s.start), func() {
				e.failStream(s, upstream.GRPCDeadlineExceeded, 504, "grpc-timeout "+v+" reached at shoal-lb", nil)
			})
			u.mu.Unlock()
		}
	}
	return nil
}

// failure is an answer made up by the proxy.
type failure struct {
	Status int
	Msg    string
}

// attach picks a backend for s and registers s on one of its connections.
// Only connect failures are retried: once headers went out, the backend
// may have acted on the request.
func (e *Engine) attach(s *pstream) (*muxConn, *failure) {
	a := e.bal.Attempt()
	defer a.Close()
	for {
		be, err := a.Pick()
		if err != nil {
			if a.Tried() {
				return nil, &failure{502, a.Last()}
			}
			return nil, &failure{503, err.Error()}
		}
		up := upstream.Of(be)
		u, err := up.Mux.(*muxPool).reserve(e, up, s)
		if err != nil {
			o := balance.Outcome{ConnectFailed: true, Failed: true, Err: upstream.Describe(be.Addr, err)}
			if a.Failed(be, o, balance.Unsent) {
				continue
			}
			return nil, &failure{502, a.Last()}
		}
		tr := up.Track(func(error) {
			e.failStream(s, upstream.GRPCUnavailable, 503, "backend "+be.Addr+" draining: drain deadline reached", nil)
		})
		u.mu.Lock()
		s.tr = tr
		u.mu.Unlock()
		if s.done.Load() {
			up.Untrack(tr)
		}
		return u, nil
	}
}

func setPseudo(fields []hpack.HeaderField, name, val string) []hpack.HeaderField {
	for i, f := range fields {
		if f.Name == name {
			if f.Value == val {
				return fields
			}
			out := append([]hpack.HeaderField(nil), fields...)
			out[i].Value = val
			return out
		}
	}
	return append([]hpack.HeaderField{{Name: name, Value: val}}, fields...)
}

func headerValue(fields []hpack.HeaderField, name string) string {
	for _, f := range fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// clientData forwards a DATA frame towards the backend. The client's
// window is re-opened only for the bytes that went out (pushLocked returns
// them); queued bytes are granted when the backend's window lets them go,
// so a slow backend slows its client instead of filling the proxy's memory.
func (e *Engine) clientData(d *muxConn, f *http2.DataFrame, fs *flushSet) error {
	d.mu.Lock()
	s := d.streams[f.StreamID]
	flow := int(f.Length)
	// Frames for streams that ended still count against the connection
	// window: give the credit back or the connection starves.
	if s == nil || s.done.Load() {
		d.grantLocked(f.StreamID, nil, flow, false)
		d.mu.Unlock()
		fs.add(d)
		return nil
	}
	d.lastActive = time.Now()
	d.mu.Unlock()
	end := f.StreamEnded()
	if end {
		s.reqEnded.Store(true)
	}
	data := f.Data()
	if s.local {
		// Buffered for the HTTP/1.1 bridge, so granted at once and
		// bounded by max-body-bytes instead of by the window.
		if s.body.Len()+len(data) > e.cfg.MaxBodyBytes {
			e.localReply(s, 413, upstream.GRPCResourceExhausted, "request body exceeds max-body-bytes "+strconv.Itoa(e.cfg.MaxBodyBytes), fs)
			return nil
		}
		s.body.Write(data)
		d.mu.Lock()
		d.grantLocked(f.StreamID, &s.reqUnacked, flow, !end)
		d.mu.Unlock()
		fs.add(d)
		if end {
			go e.bridgeH1(s)
		}
		return nil
	}
	u := s.u
	if u == nil {
		d.mu.Lock()
		d.grantLocked(f.StreamID, nil, flow, false)
		d.mu.Unlock()
		fs.add(d)
		return nil
	}
	u.mu.Lock()
	// Data dropped (stream over, backend gone) is credited at once; the
	// client's connection window must not shrink for it.
	n := len(data)
	if !u.closed && !s.done.Load() {
		n = u.pushLocked(s, qitem{data: data, end: end})
	}
	u.mu.Unlock()
	fs.add(u)
	// Padding counts against flow control but is never forwarded.
	n += flow - len(data)
	e.grantClient(s, n, fs)
	return nil
}

func (e *Engine) clientTrailers(s *pstream, f *http2.MetaHeadersFrame, fs *flushSet) error {
	if s.done.Load() {
		return nil
	}
	s.reqEnded.Store(true)
	if s.local {
		go e.bridgeH1(s)
		return nil
	}
	if s.u == nil {
		return nil
	}
	s.u.mu.Lock()
	s.u.pushLocked(s, qitem{isHdr: true, hdrs: filterFields(f.Fields), end: true})
	s.u.mu.Unlock()
	fs.add(s.u)
	return nil
}

// grantClient re-opens the client's windows for n bytes forwarded.
func (e *Engine) grantClient(s *pstream, n int, fs *flushSet) {
	if n <= 0 {
		return
	}
	d := s.d
	d.mu.Lock()
	d.grantLocked(s.toC.id, &s.reqUnacked, n, !s.reqEnded.Load())
	d.mu.Unlock()
	fs.add(d)
}

// grantBackend re-opens the backend's windows for n bytes forwarded.
func (e *Engine) grantBackend(s *pstream, n int, fs *flushSet) {
	u := s.u
	if n <= 0 || u == nil {
		return
	}
	u.mu.Lock()
	u.grantLocked(s.toB.id, &s.resUnacked, n, !s.respEnded.Load())
	u.mu.Unlock()
	fs.add(u)
}
