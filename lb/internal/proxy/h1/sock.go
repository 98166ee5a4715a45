package h1

import (
	"io"
	"net"
	"os"
	"syscall"
	"unsafe"
)

// sock reads and writes a plain TCP connection with raw read(2) and
// write(2) calls inside the connection's syscall.RawConn, which keeps Go's
// netpoller for waiting (deadlines, Close and readiness work as on the
// net.Conn) but leaves out the runtime's entersyscall/exitsyscall around
// each call.
//
// Why: a loopback write does the receiver's TCP work too and, on a loaded
// machine, often stays in the kernel past one sysmon tick (20 µs). A P
// found in a system call that long is taken from its thread and handed to
// another (a futex wake and, with nothing to run, a spin and a sleep), and
// every such retake keeps sysmon polling at its shortest interval (a
// nanosleep every 20 µs). Under wrk -c64 that cost shoal-lb about 0.3
// nanosleep and up to 1.8 futex calls per request, and sysmon alone took
// about a sixth of the proxy's CPU samples (ARCHITECTURE.md, "Load
// balancer"). The sockets are non-blocking, so neither call can block;
// holding the P through them is what nginx's single worker does anyway.
//
// Other connections (TLS) go through their own Read and Write.
type sock struct {
	c   net.Conn
	rc  syscall.RawConn // nil: use c's Read and Write
	pre []byte          // bytes read before the engine got the connection

	// One reader and one writer may run at once, so each has its own
	// scratch fields; rd and wr are bound once, not a closure per call.
	rp, wp     []byte
	rn, wn     int
	rerr, werr syscall.Errno
	rd, wr     func(fd uintptr) bool
}

// peeked is what the proxy's classifier hands over: the TCP connection
// and the bytes it already read from it.
type peeked interface {
	Peeked() (net.Conn, []byte)
}

func newSock(c net.Conn) *sock {
	s := &sock{c: c}
	under := c
	if p, ok := c.(peeked); ok {
		under, s.pre = p.Peeked()
	}
	if tc, ok := under.(*net.TCPConn); ok {
		if rc, err := tc.SyscallConn(); err == nil {
			s.rc = rc
			s.rd, s.wr = s.readFd, s.writeFd
		}
	}
	return s
}

func (s *sock) Read(p []byte) (int, error) {
	if len(s.pre) > 0 {
		n := copy(p, s.pre)
		s.pre = s.pre[n:]
		return n, nil
	}
	if s.rc == nil {
		return s.c.Read(p)
	}
	if len(p) == 0 {
		return 0, nil
	}
	s.rp, s.rn, s.rerr = p, 0, 0
	err := s.rc.Read(s.rd)
	s.rp = nil
	switch {
	case err != nil:
		return 0, s.opErr("read", err)
	case s.rerr != 0:
		return 0, s.opErr("read", os.NewSyscallError("read", s.rerr))
	case s.rn == 0:
		return 0, io.EOF
	}
	return s.rn, nil
}

func (s *sock) readFd(fd uintptr) bool {
	n, e := rawRead(fd, s.rp)
	switch e {
	case 0:
		s.rn = n
	case syscall.EAGAIN:
		return false // the netpoller waits for readiness and calls again
	default:
		s.rerr = e
	}
	return true
}

// rawRead is one read(2) of fd into p, retried on EINTR; the event loops'
// sockets read through it too.
func rawRead(fd uintptr, p []byte) (int, syscall.Errno) {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p))), uintptr(len(p)))
		if e != syscall.EINTR {
			return int(n), e
		}
	}
}

// rawWrite writes p to fd until all of it is written, the socket takes no
// more (EAGAIN) or the write fails; it returns the bytes written and the
// error that stopped it (0 when all was written).
func rawWrite(fd uintptr, p []byte) (int, syscall.Errno) {
	written := 0
	for written < len(p) {
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(unsafe.SliceData(p[written:]))), uintptr(len(p)-written))
		switch e {
		case 0:
			written += int(n)
		case syscall.EINTR:
		default:
			return written, e
		}
	}
	return written, 0
}

func (s *sock) Write(p []byte) (int, error) {
	if s.rc == nil {
		return s.c.Write(p)
	}
	s.wp, s.wn, s.werr = p, 0, 0
	err := s.rc.Write(s.wr)
	s.wp = nil
	switch {
	case err != nil:
		return s.wn, s.opErr("write", err)
	case s.werr != 0:
		return s.wn, s.opErr("write", os.NewSyscallError("write", s.werr))
	}
	return s.wn, nil
}

func (s *sock) writeFd(fd uintptr) bool {
	n, e := rawWrite(fd, s.wp)
	s.wn += n
	s.wp = s.wp[n:]
	switch e {
	case 0:
	case syscall.EAGAIN:
		return false // the netpoller waits for room and calls again
	default:
		s.werr = e
	}
	return true
}

// quiet reports whether nothing arrived on an idle pooled connection: no
// byte and no end of stream, as one non-blocking MSG_PEEK recv says.
//
// Why: a backend may write while its connection idles in the pool, e.g.
// a 408 before it closes an idle keep-alive connection, or a stray or
// extra response. Reused, that connection would hand those bytes to the
// next request, maybe another client's, as its response. A FIN that
// arrived also shows here, so a connection the backend closed is dropped
// before a request is sent on it (a non-idempotent request that finds
// it dead gets a 502, never a replay). nginx closes such connections from
// its idle handler, net/http's Transport from its read loop; the goroutine
// engine has neither, so it pays this one system call per reuse. The
// loops' pool learns the same from its idle connections' epoll events.
// Connections without a RawConn are not checked.
func (s *sock) quiet() bool {
	if len(s.pre) > 0 {
		return false
	}
	if s.rc == nil {
		return true
	}
	quiet := false
	var b [1]byte
	err := s.rc.Control(func(fd uintptr) {
		for {
			_, _, e := syscall.RawSyscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&b[0])), 1, syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
			if e == syscall.EINTR {
				continue
			}
			quiet = e == syscall.EAGAIN
			return
		}
	})
	return err == nil && quiet
}

// opErr words an error as net.Conn's Read and Write do ("read tcp
// a->b: ..."), so messages and net.Error's Timeout stay the same.
func (s *sock) opErr(op string, err error) error {
	if oe, ok := err.(*net.OpError); ok {
		err = oe.Err // RawConn's "raw-read"/"raw-write" wrapping
	}
	return &net.OpError{Op: op, Net: "tcp", Source: s.c.LocalAddr(), Addr: s.c.RemoteAddr(), Err: err}
}
