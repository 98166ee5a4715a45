package h1

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"

	"github.com/shoal-dev/shoal/lb/internal/proxy/upstream"
)

var (
	errHeadTooLarge = errors.New("request head exceeds max-header-bytes")
	crlf            = []byte("\r\n")
	crlfcrlf        = []byte("\r\n\r\n")
	lflf            = []byte("\n\n")
	lfcrlf          = []byte("\n\r\n")
)

// head is a parsed request or response head; slices point into the reader's
// buffer and are valid until the reader is advanced.
type head struct {
	raw        []byte // the whole head including the final CRLFCRLF
	line       []byte // first line without CRLF
	method     []byte
	target     []byte
	minor      int
	status     int
	length     int64 // -1: none
	chunked    bool
	connClose  bool
	connKeep   bool
	connUpg    bool
	upgrade    bool
	expect100  bool
	xff        []byte
	host       []byte
	hasHostHdr bool
	// connOpts are the other field names Connection lists, which are
	// hop-by-hop too (RFC 9110 7.6.1); a few suffice in practice, more
	// make the message malformed here.
	connOpts [8][]byte
	nOpts    int
}

// readHead reads one head of at most limit bytes from br and returns its
// length; the head stays in br's buffer.
func readHead(br *bufio.Reader, limit int) (int, error) {
	n := 0
	for {
		buf, err := br.Peek(br.Buffered())
		if len(buf) > 0 {
			// Tolerate CRLFs between pipelined requests (RFC 9112 2.2).
			if n == 0 && (buf[0] == '\r' || buf[0] == '\n') {
				br.Discard(1)
				continue
			}
			start := max(n-3, 0)
			if i := bytes.Index(buf[start:], crlfcrlf); i >= 0 {
				return start + i + 4, nil
			}
			// A head ended by bare LFs is refused at once rather than
			// left to the header timeout (see bareLF).
			if bareLF(buf[start:]) {
				return 0, errBareLF
			}
			n = len(buf)
			if n >= limit {
				return 0, errHeadTooLarge
			}
		}
		if err != nil {
			return 0, err
		}
		if _, err := br.Peek(n + 1); err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return 0, errHeadTooLarge
			}
			if n > 0 && errors.Is(err, io.EOF) {
				return 0, io.ErrUnexpectedEOF
			}
			return 0, err
		}
	}
}

var errBareLF = errors.New("bare LF line endings are refused; lines end with CRLF (RFC 9112 2.2)")

// bareLF reports whether b, which holds no CRLFCRLF, has an empty line
// ended by a bare LF. RFC 9112 2.2 lets a recipient take a bare LF as a
// line end; shoal-lb does not, because the backend behind it might not
// either, and the two would then frame the message differently. A bare LF
// inside a CRLF head makes parseHead refuse the line it is in.
func bareLF(b []byte) bool {
	return bytes.Contains(b, lflf) || bytes.Contains(b, lfcrlf)
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// Why a message was refused. Each names the rule it breaks, so a client
// (or an operator reading a backend's 502) can tell what to fix; they are
// values, so refusing costs no allocation.
var (
	errRequestLine  = errors.New("malformed request line: method SP request-target SP HTTP/1.x (RFC 9112 3)")
	errStatusLine   = errors.New("malformed status line: HTTP/1.x SP 3DIGIT [SP reason] (RFC 9112 4)")
	errTarget       = errors.New("invalid request-target: origin-form, absolute-form, or * for OPTIONS (RFC 9112 3.2)")
	errFolding      = errors.New("obsolete line folding is refused (RFC 9112 5.2)")
	errFieldName    = errors.New("invalid field name: a token with no whitespace before the colon (RFC 9112 5.1)")
	errFieldValue   = errors.New("invalid field value: NUL, CR, LF and other controls are refused (RFC 9110 5.5)")
	errCLTE         = errors.New("both Content-Length and Transfer-Encoding: ambiguous framing is refused (RFC 9112 6.1)")
	errCL           = errors.New("invalid Content-Length: one field with one decimal value is accepted (RFC 9110 8.6)")
	errTE           = errors.New("invalid Transfer-Encoding: one field of token codings with chunked once, as the final coding (RFC 9112 6.3)")
	errTE10         = errors.New("an HTTP/1.0 message with Transfer-Encoding is refused (RFC 9112 6.1)")
	errHost         = errors.New("invalid Host: an HTTP/1.1 request needs exactly one Host field, a host[:port] (RFC 9112 3.2)")
	errConnOpts     = errors.New("too many Connection options (more than 8)")
	errMissingColon = errors.New("field line without a colon (RFC 9112 5)")
)

// tchar marks the bytes of a token (RFC 9110 5.6.2).
var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// vchar marks the bytes allowed in a field value (RFC 9110 5.5): VCHAR,
// obs-text, SP and HTAB; every other control, NUL, CR and LF included, is
// refused, so no byte can end a line for a backend and not for us.
var vchar = func() (t [256]bool) {
	for c := 0x20; c < 0x100; c++ {
		t[c] = c != 0x7f
	}
	t['\t'] = true
	return t
}()

func isToken[T ~string | ~[]byte](b T) bool {
	if len(b) == 0 {
		return false
	}
	for i := 0; i < len(b); i++ {
		if !tchar[b[i]] {
			return false
		}
	}
	return true
}

func validText[T ~string | ~[]byte](b T) bool {
	for i := 0; i < len(b); i++ {
		if !vchar[b[i]] {
			return false
		}
	}
	return true
}

// validValue is validText for the accept path (see valueEnd).
func validValue(b []byte) bool { return valueEnd(b) == len(b) }

// valueEnd returns the index of the first byte of b a field value may not
// hold (len(b) if none). It checks eight bytes at a time, looking byte by
// byte only at words holding a control or DEL (HTAB and the CR ending the
// line included): parseHead finds each line's end with it, so a field
// value is read once, not once for the CRLF and once for the check.
func valueEnd(b []byte) int {
	const lo, hi = 0x0101010101010101, 0x8080808080808080
	i := 0
	for ; len(b)-i >= 8; i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		ctl := (x - 0x20*lo) & ^x & hi // some byte < 0x20
		y := x ^ 0x7f*lo
		del := (y - lo) & ^y & hi // some byte == 0x7f
		if ctl|del == 0 {
			continue
		}
		for j := i; j < i+8; j++ {
			if !vchar[b[j]] {
				return j
			}
		}
	}
	for ; i < len(b); i++ {
		if !vchar[b[i]] {
			return i
		}
	}
	return i
}

// parseDecimal parses 1*DIGIT up to 18 digits (no sign, no space, no
// overflow), as Content-Length is written; strconv would take a sign.
func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// parseFirstLine fills the request-line or status-line fields of h.
func parseFirstLine(h *head, isReq bool) error {
	if !isReq {
		l := h.line
		if len(l) < 12 || !bytes.HasPrefix(l, []byte("HTTP/1.")) || (l[7] != '0' && l[7] != '1') || l[8] != ' ' ||
			(len(l) > 12 && l[12] != ' ') || !validValue(l[12:]) {
			return errStatusLine
		}
		h.minor = int(l[7] - '0')
		st := 0
		for _, c := range l[9:12] {
			if c < '0' || c > '9' {
				return errStatusLine
			}
			st = st*10 + int(c-'0')
		}
		if st < 100 {
			return errStatusLine
		}
		h.status = st
		return nil
	}
	sp1 := bytes.IndexByte(h.line, ' ')
	sp2 := bytes.LastIndexByte(h.line, ' ')
	if sp1 <= 0 || sp2 <= sp1+1 {
		return errRequestLine
	}
	h.method, h.target = h.line[:sp1], h.line[sp1+1:sp2]
	v := h.line[sp2+1:]
	if !isToken(h.method) || len(v) != 8 || !bytes.HasPrefix(v, []byte("HTTP/1.")) || (v[7] != '0' && v[7] != '1') {
		return errRequestLine
	}
	h.minor = int(v[7] - '0')
	// The target is printable ASCII without spaces (RFC 3986): a space,
	// a control or a raw 8-bit byte would let a backend split the line
	// elsewhere.
	for _, c := range h.target {
		if c <= ' ' || c >= 0x7f {
			return errTarget
		}
	}
	// CONNECT's authority-form is refused: shoal-lb is a gateway for its
	// fleet, not a forward proxy, and a tunnel would bypass balancing.
	switch {
	case h.target[0] == '/':
	case len(h.target) == 1 && h.target[0] == '*':
		if string(h.method) != "OPTIONS" {
			return errTarget
		}
	default:
		i := bytes.Index(h.target, []byte("://"))
		if i <= 0 || !isScheme(h.target[:i]) {
			return errTarget
		}
	}
	return nil
}

func isScheme(b []byte) bool {
	for i, c := range b {
		alpha := 'a' <= c|0x20 && c|0x20 <= 'z'
		if !alpha && (i == 0 || !('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.')) {
			return false
		}
	}
	return true
}

// validHost checks a Host value loosely as uri-host [":" port]: empty (RFC
// 9112 3.2 allows it when the target has no authority) or printable ASCII
// without whitespace and without commas, so "a, b" (two hosts) is refused.
func validHost[T ~string | ~[]byte](b T) bool {
	for i := 0; i < len(b); i++ {
		c := b[i]
		if c <= ' ' || c >= 0x7f || c == ',' {
			return false
		}
	}
	return true
}

// parseTE checks a Transfer-Encoding value: a list of tokens without empty
// elements, with chunked last and only there. Anything else (xchunked,
// "chunked, identity", chunked twice, parameters) is refused rather than
// guessed at, because the field is forwarded verbatim and a backend must
// not be able to read the framing differently.
func parseTE(v []byte) bool {
	last := false
	for len(v) > 0 {
		tok := v
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
			if len(v) == 0 {
				return false // trailing comma: an empty final coding
			}
		} else {
			v = nil
		}
		tok = trimOWS(tok)
		if !isToken(tok) || last {
			return false
		}
		last = upstream.EqualFold(tok, "chunked")
	}
	return last
}

// parseHead parses raw (one head, ending with its first CRLFCRLF) as a
// request (isReq) or response head. It reads only what framing,
// keep-alive and forwarding need, and refuses anything two parsers could
// read differently (RFC 9112 11.2, request smuggling; for responses,
// response splitting): such a message is answered 400 (requests) or 502
// (responses) and its connection closed.
func parseHead(raw []byte, isReq bool, h *head) error {
	*h = head{raw: raw, length: -1}
	i := bytes.Index(raw, crlf)
	h.line = raw[:i]
	if err := parseFirstLine(h, isReq); err != nil {
		return err
	}
	var nHost, nCL, nTE int
	fields := raw[i+2 : len(raw)-2]
	// fields ends with its last line's CRLF. Each line is scanned once:
	// the name up to the colon (a colon found past the line's end gives
	// a name holding CR LF, refused as not a token), then the value up to
	// the first byte a value may not hold, which must be the line's CRLF.
	for len(fields) > 0 {
		if fields[0] == ' ' || fields[0] == '\t' {
			return errFolding
		}
		c := bytes.IndexByte(fields, ':')
		if c < 0 {
			return errMissingColon
		}
		name := fields[:c]
		if !isToken(name) {
			return errFieldName
		}
		j := c + 1 + valueEnd(fields[c+1:])
		if j+1 >= len(fields) || fields[j] != '\r' || fields[j+1] != '\n' {
			return errFieldValue
		}
		val := trimOWS(fields[c+1 : j])
		fields = fields[j+2:]
		switch len(name) {
		case 4:
			if upstream.EqualFold(name, "host") {
				nHost++
				h.hasHostHdr, h.host = true, val
			}
		case 6:
			if upstream.EqualFold(name, "expect") && upstream.EqualFold(val, "100-continue") {
				h.expect100 = true
			}
		case 7:
			if upstream.EqualFold(name, "upgrade") {
				h.upgrade = true
			}
		case 10:
			if upstream.EqualFold(name, "connection") {
				if err := h.connection(val); err != nil {
					return err
				}
			}
		case 14:
			if upstream.EqualFold(name, "content-length") {
				// One field, one value: RFC 9110 8.6 lets a recipient
				// take "5, 5" or repeated equal fields as 5, but a
				// backend might not, and nothing legitimate needs it.
				n, ok := parseDecimal(val)
				if !ok || nCL > 0 {
					return errCL
				}
				nCL++
				h.length = n
			}
		case 15:
			if upstream.EqualFold(name, "x-forwarded-for") {
				h.xff = val
			}
		case 17:
			if upstream.EqualFold(name, "transfer-encoding") {
				// A second field would make the list span two lines,
				// which parsers join differently (TE.TE obfuscation).
				if nTE > 0 || !parseTE(val) {
					return errTE
				}
				nTE++
				h.chunked = true
			}
		}
	}
	if nTE > 0 {
		if h.minor == 0 {
			return errTE10
		}
		if nCL > 0 {
			return errCLTE
		}
	}
	if isReq && (nHost > 1 || (h.minor == 1 && nHost == 0) || !validHost(h.host)) {
		return errHost
	}
	return nil
}

// connection reads a Connection value's options.
func (h *head) connection(val []byte) error {
	for len(val) > 0 {
		t := val
		if i := bytes.IndexByte(val, ','); i >= 0 {
			t, val = val[:i], val[i+1:]
		} else {
			val = nil
		}
		if t = trimOWS(t); len(t) == 0 {
			continue
		}
		switch {
		case upstream.EqualFold(t, "close"):
			h.connClose = true
		case upstream.EqualFold(t, "keep-alive"):
			h.connKeep = true
		case upstream.EqualFold(t, "upgrade"):
			h.connUpg = true
		case h.nOpts < len(h.connOpts):
			h.connOpts[h.nOpts] = t
			h.nOpts++
		default:
			return errConnOpts
		}
	}
	return nil
}

// eachField calls fn with each header field of a head parseHead accepted;
// fn returns false to stop.
func eachField(fields []byte, fn func(name, val []byte) bool) {
	for len(fields) > 0 {
		line := fields
		if j := bytes.Index(fields, crlf); j >= 0 {
			line, fields = fields[:j], fields[j+2:]
		} else {
			fields = nil
		}
		c := bytes.IndexByte(line, ':')
		if c <= 0 {
			continue
		}
		if !fn(line[:c], trimOWS(line[c+1:])) {
			return
		}
	}
}

// skipField reports whether a header line is not copied to the next hop.
// Beyond the shared hop-by-hop list (see upstream/hop.go): Transfer-Encoding
// goes with the body framing this engine copies verbatim; Connection and
// Upgrade go with an Upgrade request; Expect is answered here; and
// X-Forwarded-For is rewritten with the client's address appended.
func skipField(name []byte, isReq, forUpgrade bool) bool {
	switch len(name) {
	case 6:
		return isReq && upstream.EqualFold(name, "expect")
	case 7:
		return !forUpgrade && upstream.EqualFold(name, "upgrade")
	case 10:
		return (!forUpgrade && upstream.EqualFold(name, "connection")) || upstream.EqualFold(name, "keep-alive")
	case 15:
		return isReq && upstream.EqualFold(name, "x-forwarded-for")
	case 17:
		return false
	}
	return upstream.Hop(name)
}

// nominated reports whether Connection listed name.
func (h *head) nominated(name []byte) bool {
	for _, o := range h.connOpts[:h.nOpts] {
		if bytes.EqualFold(o, name) {
			return true
		}
	}
	return false
}

// writeRequestHead writes a request's head for a backend: the request
// line, the fields without hop-by-hop ones, X-Forwarded-For extended with
// the client's ip, and Connection: close for an HTTP/1.0 client. Both
// engines send through it.
func writeRequestHead(bw *bufio.Writer, h *head, ip string) {
	bw.Write(h.line)
	bw.Write(crlf)
	writeHeaders(bw, h, true, false)
	bw.WriteString("X-Forwarded-For: ")
	if len(h.xff) > 0 {
		bw.Write(h.xff)
		bw.WriteString(", ")
	}
	bw.WriteString(ip)
	bw.WriteString("\r\n")
	if h.minor == 0 {
		bw.WriteString("Connection: close\r\n")
	}
	bw.WriteString("\r\n")
}

// writeResponseHead writes a backend's response head for the client: the
// status line, the fields without hop-by-hop ones, and Connection: close
// when the client connection ends after it (keep false), or keep-alive for
// an HTTP/1.0 client (reqMinor 0) that keeps it. Both engines send
// through it.
func writeResponseHead(bw *bufio.Writer, resp *head, keep bool, reqMinor int) {
	bw.Write(resp.line)
	bw.Write(crlf)
	writeHeaders(bw, resp, false, false)
	if !keep {
		bw.WriteString("Connection: close\r\n")
	} else if reqMinor == 0 {
		bw.WriteString("Connection: keep-alive\r\n")
	}
	bw.WriteString("\r\n")
}

// bodyless reports whether resp, the answer to req, has no body whatever
// its framing fields say (RFC 9112 6.3).
func bodyless(req, resp *head) bool {
	return string(req.method) == "HEAD" || resp.status == 204 || resp.status == 304
}

// writeHeaders copies the header lines of h to w, leaving out what
// skipField says and the fields Connection nominated.
func writeHeaders(w *bufio.Writer, h *head, isReq, forUpgrade bool) {
	rest := h.raw[len(h.line)+2 : len(h.raw)-2]
	for len(rest) > 0 {
		line := rest
		if j := bytes.Index(rest, crlf); j >= 0 {
			line, rest = rest[:j+2], rest[j+2:]
		} else {
			rest = nil
		}
		if c := bytes.IndexByte(line, ':'); c > 0 && (skipField(line[:c], isReq, forUpgrade) || !forUpgrade && h.nominated(line[:c])) {
			continue
		}
		w.Write(line)
	}
}
