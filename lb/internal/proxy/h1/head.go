package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"

	"github.com/shoal-dev/shoal/lb/internal/proxy/upstream"
)

var (
	errHeadTooLarge = errors.New("request head exceeds max-header-bytes")
	errBadRequest   = errors.New("malformed request")
	errBadResponse  = errors.New("malformed response")
	crlf            = []byte("\r\n")
	crlfcrlf        = []byte("\r\n\r\n")
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

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// forEachToken calls fn for each comma-separated token of v.
func forEachToken(v []byte, fn func([]byte)) {
	for len(v) > 0 {
		i := bytes.IndexByte(v, ',')
		tok := v
		if i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			v = nil
		}
		if tok = trimOWS(tok); len(tok) > 0 {
			fn(tok)
		}
	}
}

// parseFirstLine fills the request-line or status-line fields of h.
func parseFirstLine(h *head, isReq bool) bool {
	if !isReq {
		if len(h.line) < 12 || !bytes.HasPrefix(h.line, []byte("HTTP/1.")) || h.line[8] != ' ' {
			return false
		}
		h.minor = int(h.line[7] - '0')
		st, err := strconv.Atoi(string(h.line[9:12]))
		h.status = st
		return err == nil && st >= 100
	}
	sp1 := bytes.IndexByte(h.line, ' ')
	sp2 := bytes.LastIndexByte(h.line, ' ')
	if sp1 <= 0 || sp2 <= sp1+1 {
		return false
	}
	h.method, h.target = h.line[:sp1], h.line[sp1+1:sp2]
	v := h.line[sp2+1:]
	if len(v) != 8 || !bytes.HasPrefix(v, []byte("HTTP/1.")) || (v[7] != '0' && v[7] != '1') {
		return false
	}
	h.minor = int(v[7] - '0')
	return true
}

// parseHead parses raw as a request (isReq) or response head. It reads
// only what framing, keep-alive and forwarding need.
func parseHead(raw []byte, isReq bool, h *head) error {
	*h = head{raw: raw, length: -1}
	bad := errBadRequest
	if !isReq {
		bad = errBadResponse
	}
	i := bytes.Index(raw, crlf)
	h.line = raw[:i]
	if !parseFirstLine(h, isReq) {
		return bad
	}
	ok := true
	eachField(raw[i+2:len(raw)-2], func(name, val []byte) bool {
		if name == nil {
			ok = false
			return false
		}
		switch len(name) {
		case 4:
			if upstream.EqualFold(name, "host") {
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
				forEachToken(val, func(t []byte) {
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
						ok = false
					}
				})
			}
		case 14:
			if upstream.EqualFold(name, "content-length") {
				n, err := strconv.ParseInt(string(val), 10, 64)
				if err != nil || n < 0 || (h.length >= 0 && h.length != n) {
					ok = false
					return false
				}
				h.length = n
			}
		case 15:
			if upstream.EqualFold(name, "x-forwarded-for") {
				h.xff = val
			}
		case 17:
			if upstream.EqualFold(name, "transfer-encoding") {
				forEachToken(val, func(t []byte) {
					h.chunked = upstream.EqualFold(t, "chunked") // the last coding must be chunked
				})
				if !h.chunked {
					ok = false
					return false
				}
			}
		}
		return true
	})
	if !ok {
		return bad
	}
	if h.chunked {
		h.length = -1 // RFC 9112 6.3: Transfer-Encoding wins
	}
	return nil
}

// eachField calls fn with each header field of a head's field section; a
// malformed line (no colon, obsolete folding) calls fn(nil, nil). fn
// returns false to stop.
func eachField(fields []byte, fn func(name, val []byte) bool) {
	for len(fields) > 0 {
		line := fields
		if j := bytes.Index(fields, crlf); j >= 0 {
			line, fields = fields[:j], fields[j+2:]
		} else {
			fields = nil
		}
		if len(line) == 0 {
			continue
		}
		c := bytes.IndexByte(line, ':')
		if c <= 0 || line[0] == ' ' || line[0] == '\t' {
			fn(nil, nil)
			return
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
