package proxy

// The frame-level HTTP/2 proxy ("mux" engine).
//
// net/http-style proxying (x/net/http2 Server + Transport) cost ~100-150 µs
// per gRPC call here: a goroutine per stream on each side, channel hops, and
// one write syscall per frame. This engine instead forwards frames: one
// reader goroutine per client connection and per backend connection, header
// blocks re-encoded with each connection's HPACK state, DATA payloads copied
// once into the destination's write buffer, and writes flushed once per read
// batch. Flow control is end to end: a sender's window is only re-opened
// once its bytes were forwarded, so buffering per stream is bounded by the
// window we advertise.

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/shoal-dev/shoal/lb/internal/balance"
)

const (
	muxStreamWindow = 1 << 20
	muxConnWindow   = 8 << 20
	defaultWindow   = 65535
	defaultMaxFrame = 16384
)

type side int

const (
	clientSide side = iota
	backendSide
)

// muxConn is one HTTP/2 connection, to a client or to a backend.
type muxConn struct {
	p    *Proxy
	side side
	c    net.Conn
	br   *bufio.Reader
	rf   *http2.Framer

	// ready is closed once a backend's SETTINGS arrived; requests wait on
	// it so the first ones see the real stream limit and windows.
	ready chan struct{}

	mu           sync.Mutex
	bw           *bufio.Writer
	wf           *http2.Framer
	enc          *hpack.Encoder
	hbuf         bytes.Buffer
	peerMaxFrame uint32
	peerInitWin  int64
	peerMaxStrm  uint32
	sendWin      int64 // connection send window towards the peer
	recvUnacked  int64 // forwarded bytes not yet granted back to the peer
	streams      map[uint32]*pstream
	blocked      map[*pstream]struct{} // streams waiting on sendWin
	nextID       uint32                // backend side: next stream id
	lastPeerID   uint32                // client side: highest stream id seen
	goaway       bool                  // no new streams
	closed       bool
	err          error
	lastActive   time.Time
	up           *upstream // backend side
}

func newMuxConn(p *Proxy, s side, c net.Conn) *muxConn {
	m := &muxConn{
		p: p, side: s, c: c,
		br:           bufio.NewReaderSize(c, 32<<10),
		bw:           bufio.NewWriterSize(c, 32<<10),
		peerMaxFrame: defaultMaxFrame,
		peerInitWin:  defaultWindow,
		peerMaxStrm:  1000,
		sendWin:      defaultWindow,
		streams:      map[uint32]*pstream{},
		blocked:      map[*pstream]struct{}{},
		nextID:       1,
		lastActive:   time.Now(),
		ready:        make(chan struct{}),
	}
	m.rf = http2.NewFramer(nil, m.br)
	m.rf.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	m.rf.MaxHeaderListSize = uint32(p.cfg.MaxHeaderBytes)
	m.wf = http2.NewFramer(m.bw, nil)
	m.enc = hpack.NewEncoder(&m.hbuf)
	return m
}

// half is one direction of a proxied stream, guarded by the destination
// connection's mu.
type half struct {
	id    uint32
	win   int64
	q     []qitem
	ended bool // END_STREAM queued or written towards the destination
	sent  bool // headers written towards the destination
}

type qitem struct {
	data  []byte
	hdrs  []hpack.HeaderField
	isHdr bool
	end   bool
}

// pstream is one proxied HTTP/2 stream.
type pstream struct {
	p    *Proxy
	d    *muxConn
	u    *muxConn
	be   *balance.Backend
	up   *upstream
	tr   *stream
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

func (m *muxConn) half(s *pstream) *half {
	if m.side == clientSide {
		return &s.toC
	}
	return &s.toB
}

// flushSet collects connections written during one read batch.
type flushSet struct{ conns []*muxConn }

func (f *flushSet) add(m *muxConn) {
	for _, c := range f.conns {
		if c == m {
			return
		}
	}
	f.conns = append(f.conns, m)
}

func (f *flushSet) flush() {
	for _, m := range f.conns {
		m.mu.Lock()
		if !m.closed {
			if err := m.bw.Flush(); err != nil {
				m.failLocked(err)
			}
		}
		m.mu.Unlock()
	}
	f.conns = f.conns[:0]
}

// after marks m dirty in fs, or flushes now when there is no batch.
func (m *muxConn) after(fs *flushSet) {
	if fs != nil {
		fs.add(m)
		return
	}
	m.mu.Lock()
	if !m.closed {
		if err := m.bw.Flush(); err != nil {
			m.failLocked(err)
		}
	}
	m.mu.Unlock()
}

func (m *muxConn) failLocked(err error) {
	if m.err == nil {
		m.err = err
	}
	m.closed = true
	m.c.Close()
}

// writeHeadersLocked encodes and writes a header block.
func (m *muxConn) writeHeadersLocked(id uint32, fields []hpack.HeaderField, end bool) error {
	m.hbuf.Reset()
	for _, f := range fields {
		m.enc.WriteField(f)
	}
	block := m.hbuf.Bytes()
	limit := int(m.peerMaxFrame)
	first := true
	for first || len(block) > 0 {
		chunk := block
		if len(chunk) > limit {
			chunk = chunk[:limit]
		}
		block = block[len(chunk):]
		var err error
		if first {
			err = m.wf.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: chunk, EndStream: end, EndHeaders: len(block) == 0})
			first = false
		} else {
			err = m.wf.WriteContinuation(id, len(block) == 0, chunk)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// pushLocked sends it towards m's peer on stream s, queueing what the flow
// control windows do not allow yet. It returns the data bytes written now.
func (m *muxConn) pushLocked(s *pstream, it qitem) int {
	h := m.half(s)
	if it.end {
		h.ended = true
	}
	if m.closed {
		return 0
	}
	if len(h.q) > 0 {
		if !it.isHdr {
			it.data = append([]byte(nil), it.data...)
		}
		h.q = append(h.q, it)
		return 0
	}
	n, rest, all := m.writeItemLocked(s, h, it)
	if !all {
		h.q = append(h.q, rest)
	}
	return n
}

// writeItemLocked writes as much of it as the windows allow; rest is what is
// left (copied) when all is false.
func (m *muxConn) writeItemLocked(s *pstream, h *half, it qitem) (n int, rest qitem, all bool) {
	if it.isHdr {
		if err := m.writeHeadersLocked(h.id, it.hdrs, it.end); err != nil {
			m.failLocked(err)
		}
		h.sent = true
		return 0, qitem{}, true
	}
	data := it.data
	for {
		chunk := min(int64(len(data)), h.win, m.sendWin, int64(m.peerMaxFrame))
		if chunk <= 0 && len(data) > 0 {
			if m.sendWin <= 0 {
				m.blocked[s] = struct{}{}
			}
			rest = qitem{data: append([]byte(nil), data...), end: it.end}
			return n, rest, false
		}
		end := it.end && int(chunk) == len(data)
		if err := m.wf.WriteData(h.id, end, data[:chunk]); err != nil {
			m.failLocked(err)
			return n, qitem{}, true
		}
		h.win -= chunk
		m.sendWin -= chunk
		n += int(chunk)
		data = data[chunk:]
		if len(data) == 0 {
			return n, qitem{}, true
		}
	}
}

// drainLocked writes queued items of s as windows allow; returns bytes
// written.
func (m *muxConn) drainLocked(s *pstream) int {
	h := m.half(s)
	total := 0
	for len(h.q) > 0 && !m.closed {
		n, rest, all := m.writeItemLocked(s, h, h.q[0])
		total += n
		if !all {
			h.q[0] = rest
			return total
		}
		h.q[0] = qitem{}
		h.q = h.q[1:]
	}
	delete(m.blocked, s)
	if m.side == clientSide && s.done.Load() {
		delete(m.streams, h.id) // finished while output was queued
	}
	return total
}

func queuedBytes(h *half) int {
	n := 0
	for _, it := range h.q {
		n += len(it.data)
	}
	return n
}

// grant records n bytes forwarded from m's peer on stream id and sends
// WINDOW_UPDATEs once a quarter of a window is owed.
func (m *muxConn) grantLocked(id uint32, unacked *int64, n int, streamOpen bool) {
	if n <= 0 || m.closed {
		return
	}
	m.recvUnacked += int64(n)
	if m.recvUnacked >= muxConnWindow/4 {
		m.wf.WriteWindowUpdate(0, uint32(m.recvUnacked))
		m.recvUnacked = 0
	}
	if unacked == nil {
		return
	}
	*unacked += int64(n)
	if streamOpen && *unacked >= muxStreamWindow/4 {
		m.wf.WriteWindowUpdate(id, uint32(*unacked))
		*unacked = 0
	}
}

func (m *muxConn) writeSettings() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	settings := []http2.Setting{
		{ID: http2.SettingInitialWindowSize, Val: muxStreamWindow},
		{ID: http2.SettingMaxHeaderListSize, Val: uint32(m.p.cfg.MaxHeaderBytes)},
	}
	if m.side == clientSide {
		settings = append(settings, http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: m.p.cfg.MaxConcurrentStreams})
	} else {
		if _, err := io.WriteString(m.bw, http2.ClientPreface); err != nil {
			return err
		}
		settings = append(settings, http2.Setting{ID: http2.SettingEnablePush, Val: 0})
	}
	if err := m.wf.WriteSettings(settings...); err != nil {
		return err
	}
	if err := m.wf.WriteWindowUpdate(0, muxConnWindow-defaultWindow); err != nil {
		return err
	}
	return m.bw.Flush()
}

// applySettings handles a peer's SETTINGS frame.
func (m *muxConn) applySettings(f *http2.SettingsFrame, fs *flushSet) (forwarded map[*pstream]int, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f.ForeachSetting(func(s http2.Setting) error {
		if e := s.Valid(); e != nil {
			err = e
			return e
		}
		switch s.ID {
		case http2.SettingInitialWindowSize:
			delta := int64(s.Val) - m.peerInitWin
			m.peerInitWin = int64(s.Val)
			for _, st := range m.streams {
				m.half(st).win += delta
			}
		case http2.SettingMaxFrameSize:
			m.peerMaxFrame = s.Val
		case http2.SettingMaxConcurrentStreams:
			m.peerMaxStrm = s.Val
		case http2.SettingHeaderTableSize:
			m.enc.SetMaxDynamicTableSizeLimit(s.Val)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	m.wf.WriteSettingsAck()
	for _, st := range m.streams {
		if n := m.drainLocked(st); n > 0 {
			if forwarded == nil {
				forwarded = map[*pstream]int{}
			}
			forwarded[st] += n
		}
	}
	fs.add(m)
	return forwarded, nil
}

func (m *muxConn) windowUpdate(f *http2.WindowUpdateFrame, fs *flushSet) (forwarded map[*pstream]int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	fs.add(m)
	if f.StreamID == 0 {
		m.sendWin += int64(f.Increment)
		for st := range m.blocked {
			if n := m.drainLocked(st); n > 0 {
				if forwarded == nil {
					forwarded = map[*pstream]int{}
				}
				forwarded[st] += n
			}
		}
		return forwarded
	}
	st := m.streams[f.StreamID]
	if st == nil {
		return nil
	}
	m.half(st).win += int64(f.Increment)
	if n := m.drainLocked(st); n > 0 {
		return map[*pstream]int{st: n}
	}
	return nil
}

var connHeaders = map[string]bool{"connection": true, "keep-alive": true, "proxy-connection": true, "transfer-encoding": true, "upgrade": true}

func filterFields(in []hpack.HeaderField) []hpack.HeaderField {
	clean := true
	for _, f := range in {
		if connHeaders[f.Name] || (f.Name == "te" && f.Value != "trailers") {
			clean = false
			break
		}
	}
	if clean {
		return in // the common case: nothing to drop, nothing to copy
	}
	out := make([]hpack.HeaderField, 0, len(in))
	for _, f := range in {
		if connHeaders[f.Name] || (f.Name == "te" && f.Value != "trailers") {
			continue
		}
		out = append(out, f)
	}
	if len(out) == len(in) {
		return in
	}
	return out
}

// ---- client connections -----------------------------------------------------

// serveMux serves one HTTP/2 client connection whose preface was peeked.
func (p *Proxy) serveMux(c net.Conn) {
	d := newMuxConn(p, clientSide, c)
	pre := make([]byte, len(http2.ClientPreface))
	c.SetReadDeadline(time.Now().Add(p.cfg.HeaderTimeout))
	if _, err := io.ReadFull(d.br, pre); err != nil || string(pre) != http2.ClientPreface {
		c.Close()
		return
	}
	if err := d.writeSettings(); err != nil {
		c.Close()
		return
	}
	p.trackMux(d, true)
	defer p.trackMux(d, false)
	stopIdle := p.watchIdle(d)
	defer stopIdle()
	fs := &flushSet{}
	first := true
	var err error
	for {
		if d.br.Buffered() == 0 {
			fs.flush()
		}
		var f http2.Frame
		f, err = d.rf.ReadFrame()
		if first {
			c.SetReadDeadline(time.Time{})
			first = false
		}
		if err != nil {
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
		if err = p.clientFrame(d, f, fs); err != nil {
			break
		}
	}
	fs.flush()
	p.closeClient(d, err)
}

func (p *Proxy) watchIdle(d *muxConn) func() {
	t := time.NewTicker(max(p.cfg.IdleTimeout/4, 10*time.Millisecond))
	stop := make(chan struct{})
	go func() {
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				d.mu.Lock()
				idle := len(d.streams) == 0 && now.Sub(d.lastActive) > p.cfg.IdleTimeout
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

func (p *Proxy) closeClient(d *muxConn, err error) {
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
		p.resetBackend(s, http2.ErrCodeCancel, nil)
		p.finish(s, true)
	}
}

func (p *Proxy) clientFrame(d *muxConn, f http2.Frame, fs *flushSet) error {
	switch f := f.(type) {
	case *http2.MetaHeadersFrame:
		d.mu.Lock()
		s := d.streams[f.StreamID]
		d.mu.Unlock()
		if s != nil {
			return p.clientTrailers(s, f, fs)
		}
		return p.newStream(d, f, fs)
	case *http2.DataFrame:
		return p.clientData(d, f, fs)
	case *http2.RSTStreamFrame:
		d.mu.Lock()
		s := d.streams[f.StreamID]
		d.mu.Unlock()
		if s != nil {
			p.resetBackend(s, http2.ErrCodeCancel, fs)
			p.finish(s, true)
		}
	case *http2.SettingsFrame:
		if !f.IsAck() {
			fw, err := d.applySettings(f, fs)
			for s, n := range fw {
				p.grantBackend(s, n, fs)
			}
			return err
		}
	case *http2.PingFrame:
		if !f.IsAck() {
			d.mu.Lock()
			d.wf.WritePing(true, f.Data)
			d.mu.Unlock()
			fs.add(d)
		}
	case *http2.WindowUpdateFrame:
		fw := d.windowUpdate(f, fs)
		for s, n := range fw {
			p.grantBackend(s, n, fs)
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
func (p *Proxy) newStream(d *muxConn, f *http2.MetaHeadersFrame, fs *flushSet) error {
	id := f.StreamID
	d.mu.Lock()
	if id%2 == 0 || id <= d.lastPeerID {
		d.mu.Unlock()
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	d.lastPeerID = id
	d.lastActive = time.Now()
	if d.goaway || uint32(len(d.streams)) >= p.cfg.MaxConcurrentStreams {
		d.wf.WriteRSTStream(id, http2.ErrCodeRefusedStream)
		d.mu.Unlock()
		fs.add(d)
		return nil
	}
	s := &pstream{p: p, d: d, start: time.Now()}
	s.toC = half{id: id, win: d.peerInitWin}
	d.streams[id] = s
	d.mu.Unlock()
	s.grpc = isGRPC(headerValue(f.Fields, "content-type"))
	if f.Truncated {
		p.localReply(s, 431, grpcResourceExhaust, "request headers exceed max-header-bytes "+strconv.Itoa(p.cfg.MaxHeaderBytes), fs)
		return nil
	}
	ended := f.StreamEnded()
	s.reqEnded.Store(ended)
	if !s.grpc && p.cfg.BackendProtocol == HTTP1 {
		s.local = true
		s.reqHdrs = f.Fields
		if ended {
			go p.bridgeH1(s)
		}
		return nil
	}
	fields := filterFields(f.Fields)
	if p.cfg.BackendTLS != nil {
		fields = setPseudo(fields, ":scheme", "https")
	} else {
		fields = setPseudo(fields, ":scheme", "http")
	}
	var (
		exclude *balance.Backend
		lastMsg string
	)
	for attempt := 0; ; attempt++ {
		be, err := p.bal.Pick(exclude)
		if err != nil {
			if lastMsg != "" { // nothing left to retry on: say what failed
				p.localReply(s, 502, grpcUnavailable, lastMsg, fs)
				return nil
			}
			p.localReply(s, 503, grpcUnavailable, err.Error(), fs)
			return nil
		}
		up := be.Transport.(*upstream)
		u, err := up.mux.reserve(p, up, s)
		if err != nil {
			msg := describeDial(be.Addr, err)
			p.bal.Done(be, balance.Outcome{ConnectFailed: true, Failed: true, Err: msg})
			lastMsg = msg + " (fleet " + p.bal.Config().Fleet + ")"
			if attempt < 2 {
				p.bal.NoteFreeRetry() // nothing was sent: no budget needed
				exclude = be
				continue
			}
			p.localReply(s, 502, grpcUnavailable, msg+" (fleet "+p.bal.Config().Fleet+")", fs)
			return nil
		}
		tr := up.track(func(error) {
			p.failStream(s, grpcUnavailable, 503, "backend "+be.Addr+" draining: drain deadline reached", nil)
		})
		u.mu.Lock()
		s.tr = tr
		u.pushLocked(s, qitem{isHdr: true, hdrs: fields, end: ended})
		u.mu.Unlock()
		fs.add(u)
		if s.done.Load() { // ended (backend lost) while we were attaching
			up.untrack(tr)
			return nil
		}
		if s.grpc {
			if v := headerValue(f.Fields, "grpc-timeout"); v != "" {
				if dur, ok := parseGRPCTimeout(v); ok {
					u.mu.Lock() // s.timer is read by finish under u.mu
					s.timer = time.AfterFunc(dur, func() {
						p.failStream(s, grpcDeadlineExceeded, 504, "grpc-timeout "+v+" reached at shoal-lb", nil)
					})
					u.mu.Unlock()
				}
			}
		}
		return nil
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

func (p *Proxy) clientData(d *muxConn, f *http2.DataFrame, fs *flushSet) error {
	d.mu.Lock()
	s := d.streams[f.StreamID]
	flow := int(f.Length)
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
		if s.body.Len()+len(data) > p.cfg.MaxBodyBytes {
			p.localReply(s, 413, grpcResourceExhaust, "request body exceeds max-body-bytes "+strconv.Itoa(p.cfg.MaxBodyBytes), fs)
			return nil
		}
		s.body.Write(data)
		d.mu.Lock()
		d.grantLocked(f.StreamID, &s.reqUnacked, flow, !end)
		d.mu.Unlock()
		fs.add(d)
		if end {
			go p.bridgeH1(s)
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
	p.grantClient(s, n, fs)
	return nil
}

func (p *Proxy) clientTrailers(s *pstream, f *http2.MetaHeadersFrame, fs *flushSet) error {
	if s.done.Load() {
		return nil
	}
	s.reqEnded.Store(true)
	if s.local {
		go p.bridgeH1(s)
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
func (p *Proxy) grantClient(s *pstream, n int, fs *flushSet) {
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
func (p *Proxy) grantBackend(s *pstream, n int, fs *flushSet) {
	u := s.u
	if n <= 0 || u == nil {
		return
	}
	u.mu.Lock()
	u.grantLocked(s.toB.id, &s.resUnacked, n, !s.respEnded.Load())
	u.mu.Unlock()
	fs.add(u)
}

// ---- backend connections ----------------------------------------------------

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
func (mp *muxPool) reserve(p *Proxy, up *upstream, s *pstream) (*muxConn, error) {
	mp.mu.Lock()
	defer mp.mu.Unlock()
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
	c, err := up.h2.dial(p.ctx)
	if err != nil {
		mp.failUntil, mp.failErr = time.Now().Add(dialFailHold), err
		return nil, err
	}
	mp.failErr = nil
	u := newMuxConn(p, backendSide, c)
	u.up = up
	if err := u.writeSettings(); err != nil {
		c.Close()
		return nil, err
	}
	go p.readBackend(u, mp)
	// Wait briefly for the backend's SETTINGS so its limits apply to the
	// first requests too; h2 lets us go on without them.
	select {
	case <-u.ready:
	case <-time.After(p.cfg.ConnectTimeout):
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
	s.u, s.up, s.be = u, u.up, u.up.be
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

func (mp *muxPool) numConns() int {
	mp.mu.Lock()
	defer mp.mu.Unlock()
	return len(mp.conns)
}

// shutdown sends GOAWAY on every connection and closes those without
// streams; the others close when their last stream ends.
func (mp *muxPool) shutdown() {
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

func (p *Proxy) readBackend(u *muxConn, mp *muxPool) {
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
					p.failStream(s, grpcUnavailable, 502, "backend "+u.up.be.Addr+" sent a malformed response: "+se.Error(), fs)
				}
				continue
			}
			break
		}
		if sf, ok := f.(*http2.SettingsFrame); ok && !sf.IsAck() {
			var fw map[*pstream]int
			if fw, err = u.applySettings(sf, fs); err != nil {
				break
			}
			for s, n := range fw {
				p.grantClient(s, n, fs)
			}
			if !readyClosed {
				close(u.ready)
				readyClosed = true
			}
			continue
		}
		if err = p.backendFrame(u, f, fs); err != nil {
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
		p.failStream(s, grpcUnavailable, 502, "backend "+u.up.be.Addr+" "+why, nil)
	}
}

func (p *Proxy) backendFrame(u *muxConn, f http2.Frame, fs *flushSet) error {
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
			p.responseEnded(s, fs)
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
		p.grantBackend(s, n+flow-len(data), fs)
		if end {
			p.responseEnded(s, fs)
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
			p.finish(s, true)
		}
	case *http2.PingFrame:
		if !f.IsAck() {
			u.mu.Lock()
			u.wf.WritePing(true, f.Data)
			u.mu.Unlock()
			fs.add(u)
		}
	case *http2.WindowUpdateFrame:
		fw := u.windowUpdate(f, fs)
		for s, n := range fw {
			p.grantClient(s, n, fs)
		}
	case *http2.GoAwayFrame:
		u.mu.Lock()
		u.goaway = true
		var refused []*pstream
		for id, s := range u.streams {
			if id > f.LastStreamID {
				refused = append(refused, s)
			}
		}
		u.mu.Unlock()
		u.up.mux.remove(u)
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
				p.finish(s, true)
				continue
			}
			p.failStream(s, grpcUnavailable, 503, "backend "+u.up.be.Addr+" is going away (GOAWAY) and did not process the request", fs)
		}
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	return nil
}

// responseEnded runs when END_STREAM arrived from the backend.
func (p *Proxy) responseEnded(s *pstream, fs *flushSet) {
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
		p.resetBackend(s, http2.ErrCodeCancel, fs)
	}
	p.finish(s, false)
}

// resetBackend sends RST_STREAM to the backend unless it ended the stream.
func (p *Proxy) resetBackend(s *pstream, code http2.ErrCode, fs *flushSet) {
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
func (p *Proxy) failStream(s *pstream, code, status int, msg string, fs *flushSet) {
	if s.done.Load() {
		return
	}
	s.failed.Store(true)
	s.failMsg.Store(&msg)
	p.resetBackend(s, http2.ErrCodeCancel, fs)
	p.localReply(s, status, code, msg, fs)
}

// localReply answers s from the proxy and finishes it.
func (p *Proxy) localReply(s *pstream, status, code int, msg string, fs *flushSet) {
	d := s.d
	d.mu.Lock()
	if s.done.Load() || s.toC.ended {
		d.mu.Unlock()
		p.finish(s, true)
		return
	}
	switch {
	case s.grpc && !s.toC.sent && len(s.toC.q) == 0:
		d.pushLocked(s, qitem{isHdr: true, end: true, hdrs: []hpack.HeaderField{
			{Name: ":status", Value: "200"},
			{Name: "content-type", Value: "application/grpc"},
			{Name: "grpc-status", Value: strconv.Itoa(code)},
			{Name: "grpc-message", Value: encodeGRPCMessage(msg)},
		}})
	case s.grpc:
		// Headers went out already: end with trailers (after queued data).
		d.pushLocked(s, qitem{isHdr: true, end: true, hdrs: []hpack.HeaderField{
			{Name: "grpc-status", Value: strconv.Itoa(code)},
			{Name: "grpc-message", Value: encodeGRPCMessage(msg)},
		}})
	case !s.toC.sent && len(s.toC.q) == 0:
		body := msg + "\n"
		d.pushLocked(s, qitem{isHdr: true, hdrs: []hpack.HeaderField{
			{Name: ":status", Value: strconv.Itoa(status)},
			{Name: "content-type", Value: contentTypeTxt},
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
	p.finish(s, false)
}

// finish releases s once: removes it from both connections, stops its timer
// and tells the balancer how it went. Queued output towards the client is
// still written (the client connection keeps s until its queue drains).
func (p *Proxy) finish(s *pstream, reset bool) {
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
		s.up.untrack(s.tr)
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
	p.bal.Done(s.be, o)
}

// bridgeH1 answers a non-gRPC h2 stream from an HTTP/1.1 backend.
func (p *Proxy) bridgeH1(s *pstream) {
	req, resp := acquireH1()
	defer releaseH1(req, resp)
	var authority, path string
	for _, f := range s.reqHdrs {
		switch f.Name {
		case ":method":
			req.Header.SetMethod(f.Value)
		case ":path":
			path = f.Value
		case ":authority":
			authority = f.Value
		case ":scheme":
		default:
			if !connHeaders[f.Name] && f.Name != "te" {
				req.Header.Add(f.Name, f.Value)
			}
		}
	}
	req.SetRequestURI(path)
	req.Header.SetHost(authority)
	req.SetBody(s.body.Bytes())
	remote := s.d.c.RemoteAddr().String()
	if status, msg := p.roundTripH1(req, resp, remote); status != 0 {
		p.localReply(s, status, grpcUnavailable, msg, nil)
		return
	}
	fields := []hpack.HeaderField{{Name: ":status", Value: strconv.Itoa(resp.StatusCode())}}
	for k, v := range resp.Header.All() {
		name := strings.ToLower(string(k))
		if connHeaders[name] || name == "content-length" {
			continue
		}
		fields = append(fields, hpack.HeaderField{Name: name, Value: string(v)})
	}
	body := resp.Body()
	fields = append(fields, hpack.HeaderField{Name: "content-length", Value: strconv.Itoa(len(body))})
	d := s.d
	d.mu.Lock()
	if !s.done.Load() {
		d.pushLocked(s, qitem{isHdr: true, hdrs: fields, end: len(body) == 0})
		if len(body) > 0 {
			d.pushLocked(s, qitem{data: body, end: true})
		}
	}
	d.mu.Unlock()
	d.after(nil)
	p.finish(s, false)
}

// trackMux registers client connections for Shutdown.
func (p *Proxy) trackMux(d *muxConn, add bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if add {
		p.muxConns[d] = struct{}{}
		p.h2wg.Add(1)
		return
	}
	delete(p.muxConns, d)
	p.h2wg.Done()
}

// shutdownMux sends GOAWAY to every client connection.
func (p *Proxy) shutdownMux() {
	p.mu.Lock()
	conns := make([]*muxConn, 0, len(p.muxConns))
	for d := range p.muxConns {
		conns = append(conns, d)
	}
	p.mu.Unlock()
	for _, d := range conns {
		d.mu.Lock()
		if !d.closed {
			d.goaway = true
			d.wf.WriteGoAway(d.lastPeerID, http2.ErrCodeNo, []byte("shutting down"))
			d.bw.Flush()
			if len(d.streams) == 0 {
				d.failLocked(errors.New("shutdown"))
			}
		}
		d.mu.Unlock()
	}
}

func (p *Proxy) closeMux() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for d := range p.muxConns {
		d.c.Close()
	}
}

func acquireH1() (*fasthttp.Request, *fasthttp.Response) {
	return fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
}

func releaseH1(req *fasthttp.Request, resp *fasthttp.Response) {
	fasthttp.ReleaseRequest(req)
	fasthttp.ReleaseResponse(resp)
}
