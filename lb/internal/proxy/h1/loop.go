//go:build linux

package h1

import (
	"bufio"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The event-loop mode (--h1-engine loop, the default on Linux) serves
// plain-TCP HTTP/1.1 client connections from a few event loops (by
// default one per P but one: DefaultLoops) instead of one goroutine each:
// a loop owns an epoll set (edge-triggered) of its client and backend
// sockets and reads a socket only after epoll reported it readable and
// until a read came back short, so a read returns EAGAIN only after one
// that filled its buffer, and a request costs no goroutine switch.
//
// Why not gnet (github.com/panjf2000/gnet/v2): its loops own their
// listener, while here the proxy's listener classifies each connection
// first (TLS, h2 preface); and its client side places enrolled backend
// connections on a loop of its choosing, so a client and its backend would
// often sit on two loops, with a cross-thread wake-up per request. Here a
// backend connection lives on the loop of the client it serves, and each
// loop pools its own.
//
// Why the loop waits in Go's netpoller: the loop's epoll descriptor is
// itself registered there (os.NewFile on a non-blocking descriptor), so a
// loop with nothing to do parks like any goroutine and the P sleeps in the
// runtime's own epoll_wait. A loop blocking in epoll_wait itself would be
// a thread in a system call, which sysmon retakes the P from every 20 µs
// (the cost sock.go explains); tried, it cost 16-20 µs of CPU per request
// against 13 µs. With more than one loop, see nudge.
//
// What a loop serves itself: requests without a body, without Upgrade and
// without Expect, answered with a Content-Length body or none. Anything
// else goes to the goroutine engine, which then serves the connection to
// its end: a request with a body, Upgrade or Expect before it is sent (the
// whole connection is handed over with the bytes read so far), a chunked
// or close-delimited response once its head is read (client and backend
// connection are handed over together, and the goroutine engine copies the
// response). TLS clients and --backend-protocol h2c|h2 never use a loop.

// errWouldBlock is what a loop socket's Read returns when the data is not
// there yet; the loop waits for epoll to say it is.
var errWouldBlock = errors.New("h1 loop: would block")

const loopEvents = 256

// LoopSupported reports whether --h1-engine loop can run here (epoll).
const LoopSupported = true

const (
	evIn  = unix.EPOLLIN | unix.EPOLLRDHUP
	evOut = unix.EPOLLOUT
	evErr = unix.EPOLLERR | unix.EPOLLHUP
)

// loop is one event loop. Everything in it is touched by its goroutine
// only, except inbox (under mu).
type loop struct {
	e     *Engine
	id    int
	epfd  int
	evfd  int // eventfd: inbox has work
	file  *os.File
	rc    syscall.RawConn
	poll  func(fd uintptr) bool
	ev    [loopEvents]unix.EpollEvent
	nev   int
	conns map[int32]loopFD
	seq   uint32
	hw    loopHeadWriter
	// nested counts the exchanges ended inside the step running now
	// (endExchange).
	nested int

	mu     sync.Mutex
	inbox  []func()
	posted []func()
	done   bool

	clients map[*lconn]struct{}
	pools   map[*pool]struct{} // pools holding idle connections of this loop
	tick    time.Duration
	nextTk  time.Time

	peers  []*loop     // the engine's loops, this one included
	parked atomic.Bool // waiting in the netpoller
	nudged time.Time
}

// loopFD is a socket registered with a loop.
type loopFD interface {
	event(ev uint32)
	sockFD() *lsock
}

func newLoop(e *Engine, id int) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(evfd)}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	// Non-blocking, so os.NewFile registers it with the netpoller.
	if err := unix.SetNonblock(epfd, true); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, os.NewSyscallError("fcntl", err)
	}
	l := &loop{e: e, id: id, epfd: epfd, evfd: evfd, conns: map[int32]loopFD{},
		clients: map[*lconn]struct{}{}, pools: map[*pool]struct{}{}}
	l.file = os.NewFile(uintptr(epfd), "h1-loop")
	rc, err := l.file.SyscallConn()
	if err != nil {
		l.file.Close()
		unix.Close(evfd)
		return nil, err
	}
	l.rc = rc
	l.poll = l.pollFd
	l.hw.init()
	// Timeouts are checked on a tick of an eighth of the shortest, so
	// one fires between 100 % and 112.5 % of its value.
	l.tick = min(e.cfg.HeaderTimeout, e.cfg.IdleTimeout, e.cfg.ResponseHeaderTimeout) / 8
	l.tick = max(min(l.tick, time.Second), 5*time.Millisecond)
	return l, nil
}

// pollFd collects the ready events without blocking; with none it
// returns false and the netpoller waits for the epoll descriptor to
// become readable.
func (l *loop) pollFd(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall6(unix.SYS_EPOLL_PWAIT, fd, uintptr(unsafe.Pointer(&l.ev[0])), loopEvents, 0, 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			l.nev = 0
			return true
		}
		l.nev = int(n)
		if n == 0 {
			l.parked.Store(true)
		}
		return n > 0
	}
}

// nudgeEvery bounds how long a busy loop lets a parked one wait for the
// netpoller (see nudge).
const nudgeEvery = 100 * time.Microsecond

// nudge makes sure the runtime polls the network while this loop is busy.
//
// Why: a loop with nothing to do parks in the netpoller, and the thread
// that wakes it from its blocking netpoll runs it, leaving no thread in
// netpoll. A loop under load never parks, so its thread never polls
// again: another parked loop's events then wait for sysmon's poll, up to
// 10 ms, and each request waits for two of them. Starting a goroutine
// wakes an idle P's thread, which runs it and then polls (and blocks in
// netpoll, waking the parked loop at its next event). In bench-lb that
// tail was 34-111 ms with two loops against nginx's 6-18 ms.
func (l *loop) nudge(now time.Time) {
	if now.Sub(l.nudged) < nudgeEvery {
		return
	}
	for _, o := range l.peers {
		if o != l && o.parked.Load() {
			l.nudged = now
			go func() {}()
			return
		}
	}
}

// post runs fn on the loop; it reports false when the loop has ended.
func (l *loop) post(fn func()) bool {
	l.mu.Lock()
	if l.done {
		l.mu.Unlock()
		return false
	}
	wake := len(l.inbox) == 0
	l.inbox = append(l.inbox, fn)
	l.mu.Unlock()
	if wake {
		var one = [8]byte{1}
		unix.Write(l.evfd, one[:])
	}
	return true
}

func (l *loop) run() {
	l.nextTk = time.Now().Add(l.tick)
	l.file.SetReadDeadline(l.nextTk)
	for {
		err := l.rc.Read(l.poll)
		l.parked.Store(false)
		if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		for i := range l.nev {
			ev := &l.ev[i]
			if ev.Fd == int32(l.evfd) {
				continue
			}
			if c, ok := l.conns[ev.Fd]; ok && uint32(ev.Pad) == c.sockFD().seq {
				c.event(ev.Events)
			}
		}
		l.nev = 0
		l.runInbox()
		now := time.Now()
		if len(l.peers) > 1 {
			l.nudge(now)
		}
		if !now.Before(l.nextTk) {
			l.timeouts(now)
			if l.e.closing.Load() && len(l.clients) == 0 {
				break
			}
			l.nextTk = now.Add(l.tick)
			l.file.SetReadDeadline(l.nextTk)
		}
	}
	l.stop()
}

func (l *loop) runInbox() {
	l.mu.Lock()
	if len(l.inbox) == 0 {
		l.mu.Unlock()
		return
	}
	var buf [8]byte
	unix.Read(l.evfd, buf[:])
	l.posted, l.inbox = l.inbox, l.posted[:0]
	l.mu.Unlock()
	for i, fn := range l.posted {
		fn()
		l.posted[i] = nil
	}
}

// stop ends the loop: its clients and idle backend connections are
// closed, and posts after it are refused (their callers clean up).
func (l *loop) stop() {
	l.mu.Lock()
	l.done = true
	inbox := l.inbox
	l.inbox = nil
	l.mu.Unlock()
	for _, fn := range inbox {
		fn()
	}
	for c := range l.clients {
		c.close()
	}
	for p := range l.pools {
		var idle []*lback
		p.mu.Lock()
		if l.id < len(p.lidle) {
			idle = p.lidle[l.id]
			p.lidle[l.id] = nil
		}
		p.mu.Unlock()
		for _, b := range idle {
			b.close()
		}
	}
	l.file.Close()
	unix.Close(l.evfd)
}

// add registers s with the loop, edge-triggered.
func (l *loop) add(s *lsock, c loopFD) error {
	l.seq++
	s.seq = l.seq
	s.l = l
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET, Fd: int32(s.fd), Pad: int32(s.seq)}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, s.fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	s.readable, s.writable = true, true
	l.conns[int32(s.fd)] = c
	return nil
}

// forget removes s from the loop without closing its descriptor.
func (l *loop) forget(s *lsock) {
	if l.conns[int32(s.fd)] != nil && l.conns[int32(s.fd)].sockFD() == s {
		delete(l.conns, int32(s.fd))
	}
	unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, s.fd, nil)
}

// timeouts closes what waited too long.
func (l *loop) timeouts(now time.Time) {
	for c := range l.clients {
		c.timeout(now)
	}
}

// lsock is a non-blocking socket owned by a loop.
type lsock struct {
	l        *loop
	fd       int
	seq      uint32
	readable bool // epoll said so, and no read since came back short
	writable bool
	// hup: the peer ended its side (EPOLLRDHUP); a short read then does
	// not mean the queue is empty, since the EOF still waits to be read
	// and no edge will announce it again.
	hup    bool
	closed bool
	pre    []byte // read before the loop got the socket
	out    []byte // written when the socket takes it
	laddr  net.Addr
	raddr  net.Addr
}

// takeFD moves c's socket out of the netpoller: it returns a duplicate
// descriptor (non-blocking like the original) and closes c.
func takeFD(c net.Conn) (int, error) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return -1, errors.New("h1 loop: not a TCP connection")
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, os.NewSyscallError("fcntl", derr)
	}
	tc.Close()
	return fd, nil
}

// fdConn gives a loop's socket back to the netpoller as a net.Conn; fd is
// closed (the net.Conn holds a duplicate).
func fdConn(fd int) (net.Conn, error) {
	f := os.NewFile(uintptr(fd), "")
	c, err := net.FileConn(f)
	f.Close()
	return c, err
}

// Read reads after readiness: without it, or once a read came back
// short (the socket's queue is empty; epoll reports the next data), it
// returns errWouldBlock without a system call.
func (s *lsock) Read(p []byte) (int, error) {
	if len(s.pre) > 0 {
		n := copy(p, s.pre)
		s.pre = s.pre[n:]
		return n, nil
	}
	if !s.readable || s.closed {
		return 0, errWouldBlock
	}
	n, e := rawRead(uintptr(s.fd), p)
	switch e {
	case 0:
		if n == 0 {
			return 0, io.EOF
		}
		if n < len(p) && !s.hup {
			s.readable = false
		}
		return n, nil
	case syscall.EAGAIN:
		s.readable = false
		return 0, errWouldBlock
	}
	return 0, s.opErr("read", e)
}

// flush writes out what the socket takes; the rest waits for EPOLLOUT.
func (s *lsock) flush() error {
	if len(s.out) > 0 && s.writable {
		n, e := rawWrite(uintptr(s.fd), s.out)
		s.out = s.out[:copy(s.out, s.out[n:])]
		switch e {
		case 0:
		case syscall.EAGAIN:
			s.writable = false
		default:
			return s.opErr("write", e)
		}
	}
	if len(s.out) == 0 && cap(s.out) > maxKeptOut {
		// A body's worth (up to maxLoopOut and a read more) is not kept
		// by an idle keep-alive connection.
		s.out = nil
	}
	return nil
}

// maxKeptOut is the most output buffer a socket keeps once it is written:
// a few heads' worth, as the goroutine engine's writer holds.
const maxKeptOut = 16 << 10

// Write queues p (bufio.Writer's sink); flush sends it.
func (s *lsock) Write(p []byte) (int, error) {
	s.out = append(s.out, p...)
	return len(p), nil
}

func (s *lsock) opErr(op string, e syscall.Errno) error {
	return &net.OpError{Op: op, Net: "tcp", Source: s.laddr, Addr: s.raddr, Err: os.NewSyscallError(op, e)}
}

// closeFD forgets and closes the socket.
func (s *lsock) closeFD() {
	if s.closed {
		return
	}
	s.closed = true
	if s.l != nil {
		s.l.forget(s)
	}
	unix.Close(s.fd)
}

// loopHeadWriter is a loop's one bufio.Writer for heads (writeHeaders
// takes one), pointed at the socket whose output it appends to.
type loopHeadWriter struct {
	sink headSink
	bw   *bufio.Writer
}

type headSink struct{ s *lsock }

func (h *headSink) Write(p []byte) (int, error) { return h.s.Write(p) }

func (h *loopHeadWriter) init() {
	h.bw = bufio.NewWriterSize(&h.sink, 4<<10)
}

// to points the writer at s.
func (h *loopHeadWriter) to(s *lsock) *bufio.Writer {
	h.sink.s = s
	return h.bw
}

// loops are the engine's event loops (DefaultLoops unless configured),
// started with the first client connection.
type loops struct {
	once sync.Once
	ls   []*loop
	err  error
	next uint32
	mu   sync.Mutex
}

func (ls *loops) start(e *Engine) error {
	ls.once.Do(func() {
		var all []*loop
		n := e.cfg.Loops
		if n == 0 {
			n = DefaultLoops(runtime.GOMAXPROCS(0))
		}
		for i := range n {
			l, err := newLoop(e, i)
			if err != nil {
				for _, l := range all {
					l.file.Close()
					unix.Close(l.evfd)
				}
				ls.err = err
				return
			}
			all = append(all, l)
		}
		for _, l := range all {
			l.peers = all
		}
		ls.mu.Lock()
		ls.ls = all
		ls.mu.Unlock()
		for _, l := range all {
			go l.run()
		}
	})
	return ls.err
}

// pick returns the loop for a new connection (round robin).
func (ls *loops) pick() *loop {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.next++
	return ls.ls[int(ls.next)%len(ls.ls)]
}

// each runs fn on every loop.
func (ls *loops) each(fn func(l *loop)) {
	ls.mu.Lock()
	all := ls.ls
	ls.mu.Unlock()
	for _, l := range all {
		l.post(func() { fn(l) })
	}
}
