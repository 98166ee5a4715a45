package h2mux

import (
	"context"
	"errors"
	"io"
	"strconv"
	"sync"
	"time"

	"golang.org/x/net/http2"

	"github.com/shoal-dev/shoal/lb/internal/proxy/upstream"
)

// muxPool is one backend's frame-level connections.
type muxPool struct {
	mu    sync.Mutex
	conns []*muxConn
	// After a failed dial, reserve fails fast until failUntil: dials run
	// on a client connection's reader, and a blackholed backend must not
	// stall every stream behind a connect timeout again and again.
	failUntil time.Time
	failErr   error
}

const dialFailHold = time.Second

// reserve registers s on a backend connection with room, dialing one if
// needed, and returns it with the stream id.
func (mp *muxPool) reserve(e *Engine, up *upstream.Upstream, s *pstream) (*muxConn, error) {
	mp.mu.Lock()
	defer mp.mu.Unlock()
	// The first connection with room: few connections, each carrying many
	// streams, is what h2 backends are built for; a new one is opened only
	// when the backend's stream limit is reached.
	for _, u := range mp.conns {
		u.mu.Lock()
		if !u.closed && !u.goaway && uint32(len(u.streams)) < u.peerMaxStrm && u.nextID < 1<<31-1 {
			u.registerLocked(s)
			u.mu.Unlock()
			return u, nil
		}
		u.mu.Unlock()
	}
	if mp.failErr != nil && time.Now().Before(mp.failUntil) {
		return nil, mp.failErr
	}
	c, err := up.DialH2(e.ctx)
	if err != nil {
		mp.failUntil, mp.failErr = time.Now().Add(dialFailHold), err
		return nil, err
	}
	mp.failErr = nil
	u := newMuxConn(e, backendSide, c)
	u.up = up
	if err := u.writeSettings(); err != nil {
		c.Close()
		return nil, err
	}
	go e.readBackend(u, mp)
	// Wait briefly for the backend's SETTINGS so its limits apply to the
	// first requests too; h2 lets us go on without them.
	select {
	case <-u.ready:
	case <-time.After(e.cfg.ConnectTimeout):
	}
	mp.conns = append(mp.conns, u)
	u.mu.Lock()
	u.registerLocked(s)
	u.mu.Unlock()
	return u, nil
}

// registerLocked attaches s to u; s's backend fields are set here, under
// u.mu, so a connection failure racing the attach still finds them.
func (u *muxConn) registerLocked(s *pstream) {
	id := u.nextID
	u.nextID += 2
	s.u, s.up, s.be = u, u.up, u.up.Backend
	s.toB = half{id: id, win: u.peerInitWin}
	u.streams[id] = s
}

func (mp *muxPool) remove(u *muxConn) {
	mp.mu.Lock()
	defer mp.mu.Unlock()
	for i, c := range mp.conns {
		if c == u {
			mp.conns = append(mp.conns[:i], mp.conns[i+1:]...)
			return
		}
	}
}

// Conns is the number of open connections.
func (mp *muxPool) Conns() int {
	mp.mu.Lock()
	defer mp.mu.Unlock()
	return len(mp.conns)
}

// shutdown sends GOAWAY on every connection and closes those without
// streams; the others close when their last stream ends.
func (mp *muxPool) Shutdown(context.Context) {
	mp.mu.Lock()
	conns := mp.conns
	mp.conns = nil
	mp.mu.Unlock()
	for _, u := range conns {
		u.mu.Lock()
		if !u.closed {
			u.goaway = true
			u.wf.WriteGoAway(0, http2.ErrCodeNo, []byte("backend drained"))
			u.bw.Flush()
			if len(u.streams) == 0 {
				u.failLocked(errors.New("drained"))
			}
		}
		u.mu.Unlock()
	}
}

// readBackend is a backend connection's only reader. It forwards what the
// backend sends to each stream's client and, when the connection ends,
// fails every stream still on it with UNAVAILABLE naming the backend: a
// lost connection is one backend's problem, never its clients' silence.
func (e *Engine) readBackend(u *muxConn, mp *muxPool) {
	fs := &flushSet{}
	var err error
	readyClosed := false
	for {
		if u.br.Buffered() == 0 {
			fs.flush()
		}
		var f http2.Frame
		f, err = u.rf.ReadFrame()
		if err != nil {
			var se http2.StreamError
			if errors.As(err, &se) {
				u.mu.Lock()
				s := u.streams[se.StreamID]
				u.wf.WriteRSTStream(se.StreamID, http2.ErrCodeProtocol)
				u.mu.Unlock()
				fs.add(u)
				if s != nil {
					e.failStream(s, upstream.GRPCUnavailable, 502, "backend "+u.up.Backend.Addr+" sent a malformed response: "+se.Error(), fs)
				}
				continue
			}
			break
		}
		var handled bool
		if handled, err = e.controlFrame(u, f, fs); err != nil {
			break
		}
		// The first SETTINGS releases the requests waiting in reserve, so
		// they see the backend's real stream limit and windows.
		if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() && !readyClosed {
			close(u.ready)
			readyClosed = true
		}
		if handled {
			continue
		}
		if err = e.backendFrame(u, f, fs); err != nil {
			break
		}
	}
	fs.flush()
	if !readyClosed {
		close(u.ready)
	}
	mp.remove(u)
	u.mu.Lock()
	wasClosed := u.closed
	u.closed = true
	u.c.Close()
	ss := make([]*pstream, 0, len(u.streams))
	for _, s := range u.streams {
		ss = append(ss, s)
	}
	u.mu.Unlock()
	why := "connection lost"
	if err != nil && !errors.Is(err, io.EOF) && !wasClosed {
		why += ": " + err.Error()
	}
	for _, s := range ss {
		e.failStream(s, upstream.GRPCUnavailable, 502, "backend "+u.up.Backend.Addr+" "+why, nil)
	}
}

// backendFrame handles a stream-level frame from a backend.
func (e *Engine) backendFrame(u *muxConn, f http2.Frame, fs *flushSet) error {
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		u.mu.Lock()
		s := u.streams[f.StreamID]
		u.mu.Unlock()
		if s == nil {
			return nil
		}
		status := f.PseudoValue("status")
		if len(status) == 3 && status[0] == '1' {
			return nil // 1xx: the final response follows
		}
		end := f.StreamEnded()
		fields := filterFields(f.Fields)
		if status != "" {
			code, _ := strconv.Atoi(status)
			s.status.Store(int32(code))
		}
		// A backend answering UNAVAILABLE is failing even with HTTP 200:
		// it counts towards ejection like a 5xx.
		if s.grpc && headerValue(f.Fields, "grpc-status") == "14" {
			s.grpcUnavl.Store(true)
		}
		d := s.d
		d.mu.Lock()
		if !s.done.Load() {
			d.pushLocked(s, qitem{isHdr: true, hdrs: fields, end: end})
		}
		d.mu.Unlock()
		fs.add(d)
		if end {
			e.responseEnded(s, fs)
		}
	case *http2.DataFrame:
		u.mu.Lock()
		s := u.streams[f.StreamID]
		flow := int(f.Length)
		if s == nil {
			u.grantLocked(f.StreamID, nil, flow, false)
			u.mu.Unlock()
			fs.add(u)
			return nil
		}
		u.mu.Unlock()
		data := f.Data()
		end := f.StreamEnded()
		d := s.d
		d.mu.Lock()
		n := len(data) // dropped data is credited at once
		if !s.done.Load() && !d.closed {
			n = d.pushLocked(s, qitem{data: data, end: end})
		}
		d.mu.Unlock()
		fs.add(d)
		// As on the client side: the backend's window re-opens only for
		// what reached the client's connection (plus padding).
		e.grantBackend(s, n+flow-len(data), fs)
		if end {
			e.responseEnded(s, fs)
		}
	case *http2.RSTStreamFrame:
		u.mu.Lock()
		s := u.streams[f.StreamID]
		u.mu.Unlock()
		if s == nil {
			return nil
		}
		if f.ErrCode != http2.ErrCodeNo || !s.respEnded.Load() {
			s.failed.Store(f.ErrCode != http2.ErrCodeNo && f.ErrCode != http2.ErrCodeCancel)
			d := s.d
			d.mu.Lock()
			if !d.closed && !s.done.Load() {
				d.wf.WriteRSTStream(s.toC.id, f.ErrCode)
				s.toC.ended = true
			}
			d.mu.Unlock()
			fs.add(d)
			e.finish(s, true)
		}
	case *http2.GoAwayFrame:
		// Streams above LastStreamID were never processed: they are
		// refused to their clients (below) while the rest finish, and no
		// new stream goes on this connection.
		u.mu.Lock()
		u.goaway = true
		var refused []*pstream
		for id, s := range u.streams {
			if id > f.LastStreamID {
				refused = append(refused, s)
			}
		}
		u.mu.Unlock()
		u.up.Mux.(*muxPool).remove(u)
		for _, s := range refused {
			// The backend never processed these. REFUSED_STREAM tells the
			// client so (RFC 9113 8.7): gRPC clients retry it
			// transparently, and the retry is balanced afresh.
			d := s.d
			d.mu.Lock()
			refusable := !d.closed && !s.done.Load() && !s.toC.sent && len(s.toC.q) == 0
			if refusable {
				d.wf.WriteRSTStream(s.toC.id, http2.ErrCodeRefusedStream)
				s.toC.ended = true
			}
			d.mu.Unlock()
			if refusable {
				fs.add(d)
				e.finish(s, true)
				continue
			}
			e.failStream(s, upstream.GRPCUnavailable, 503, "backend "+u.up.Backend.Addr+" is going away (GOAWAY) and did not process the request", fs)
		}
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	return nil
}

// responseEnded runs when END_STREAM arrived from the backend.
