package h2mux

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/shoal-dev/shoal/lb/internal/proxy/upstream"
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
	e    *Engine
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
	up           *upstream.Upstream // backend side
}

func newMuxConn(e *Engine, s side, c net.Conn) *muxConn {
	m := &muxConn{
		e: e, side: s, c: c,
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
	m.rf.MaxHeaderListSize = uint32(e.cfg.MaxHeaderBytes)
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
		{ID: http2.SettingMaxHeaderListSize, Val: uint32(m.e.cfg.MaxHeaderBytes)},
	}
	if m.side == clientSide {
		settings = append(settings, http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: m.e.cfg.MaxConcurrentStreams})
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
		if verr := s.Valid(); verr != nil {
			err = verr
			return verr
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

// controlFrame handles the frames about m itself rather than a stream:
// SETTINGS, PING and WINDOW_UPDATE. Bytes that new window let m forward
// re-open the windows of the streams' other side.
func (e *Engine) controlFrame(m *muxConn, f http2.Frame, fs *flushSet) (handled bool, err error) {
	grant := e.grantBackend
	if m.side == backendSide {
		grant = e.grantClient
	}
	var fw map[*pstream]int
	switch f := f.(type) {
	case *http2.SettingsFrame:
		if !f.IsAck() {
			fw, err = m.applySettings(f, fs)
		}
	case *http2.PingFrame:
		if !f.IsAck() {
			m.mu.Lock()
			m.wf.WritePing(true, f.Data)
			m.mu.Unlock()
			fs.add(m)
		}
	case *http2.WindowUpdateFrame:
		fw = m.windowUpdate(f, fs)
	default:
		return false, nil
	}
	for s, n := range fw {
		grant(s, n, fs)
	}
	return true, err
}
