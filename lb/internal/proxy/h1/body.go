package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// Bodies are streamed through the connections' buffers. Each copy takes a
// refresh func, run before src is read from the network: it moves the read
// deadline so a timeout bounds each stall, not the whole body.

// copyN copies exactly n bytes from src to dst.
func copyN(dst *bufio.Writer, src *bufio.Reader, n int64, refresh func()) error {
	for n > 0 {
		if src.Buffered() == 0 {
			if err := dst.Flush(); err != nil {
				return err
			}
			if refresh != nil {
				refresh()
			}
			if _, err := src.Peek(1); err != nil {
				return unexpected(err)
			}
		}
		buf, _ := src.Peek(int(min(int64(src.Buffered()), n)))
		if _, err := dst.Write(buf); err != nil {
			return err
		}
		src.Discard(len(buf))
		n -= int64(len(buf))
	}
	return nil
}

// copyUntilEOF copies a close-delimited body.
func copyUntilEOF(dst *bufio.Writer, src *bufio.Reader, refresh func()) error {
	for {
		if src.Buffered() == 0 {
			if err := dst.Flush(); err != nil {
				return err
			}
			refresh()
			if _, err := src.Peek(1); err != nil {
				if errors.Is(err, io.EOF) {
					return nil
				}
				return err
			}
		}
		buf, _ := src.Peek(src.Buffered())
		if _, err := dst.Write(buf); err != nil {
			return err
		}
		src.Discard(len(buf))
	}
}

func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// copyChunked copies a chunked body verbatim (sizes, extensions, trailers),
// flushing dst whenever src has nothing buffered so streams stay live.
func copyChunked(dst *bufio.Writer, src *bufio.Reader, refresh func()) error {
	for {
		line, size, err := chunkHeader(dst, src, refresh)
		if err != nil {
			return err
		}
		if _, err := dst.Write(line); err != nil {
			return err
		}
		if size == 0 {
			return copyTrailers(dst, src, refresh)
		}
		if err := copyN(dst, src, size, refresh); err != nil {
			return err
		}
		if err := chunkEnd(dst, src, refresh); err != nil {
			return err
		}
	}
}

var errChunkEnd = errors.New("malformed chunked body: chunk data not followed by CRLF")

// chunkEnd checks and copies (when dst is set) the CRLF after a chunk's
// data: without the check, a chunk longer than its size would be copied
// on as the start of the next chunk, which a backend may frame otherwise.
func chunkEnd(dst *bufio.Writer, src *bufio.Reader, refresh func()) error {
	if src.Buffered() < 2 {
		if dst != nil {
			if err := dst.Flush(); err != nil {
				return err
			}
		}
		if refresh != nil {
			refresh()
		}
	}
	b, err := src.Peek(2)
	if err != nil {
		return unexpected(err)
	}
	if b[0] != '\r' || b[1] != '\n' {
		return errChunkEnd
	}
	src.Discard(2)
	if dst != nil {
		_, err = dst.Write(crlf)
	}
	return err
}

var errTrailer = errors.New("malformed chunked body: a trailer line is not a field line ending in CRLF (RFC 9112 7.1.2)")

// copyTrailers copies a chunked body's trailer section, up to the empty
// line that ends it. Each line is checked as a header field line is, since
// it is copied verbatim.
func copyTrailers(dst *bufio.Writer, src *bufio.Reader, refresh func()) error {
	for {
		t, err := readLine(dst, src, refresh)
		if err != nil {
			return err
		}
		if !crlfLine(t) {
			return errTrailer
		}
		if len(t) > 2 {
			c := bytes.IndexByte(t, ':')
			if c < 0 || !isToken(t[:c]) || !validValue(t[c+1:len(t)-2]) {
				return errTrailer
			}
		}
		if dst != nil {
			if _, err := dst.Write(t); err != nil {
				return err
			}
		}
		if len(t) <= 2 {
			return nil
		}
	}
}

var errChunkSize = errors.New("malformed chunk-size line: 1 to 15 hex digits, optional extensions without controls, CRLF (RFC 9112 7.1)")

// crlfLine reports whether a line read up to its LF ends in CRLF and has
// no other CR: a bare CR or LF is a line end to some parsers only.
func crlfLine(line []byte) bool {
	n := len(line)
	return n >= 2 && line[n-2] == '\r' && bytes.IndexByte(line[:n-2], '\r') < 0
}

// chunkHeader reads a chunk-size line. Sizes are hex digits only (no sign,
// no 0x, no whitespace before the extensions' BWS), at most 15 of them so
// they cannot overflow; extensions are copied as they are but may not hold
// controls.
func chunkHeader(dst *bufio.Writer, src *bufio.Reader, refresh func()) ([]byte, int64, error) {
	line, err := readLine(dst, src, refresh)
	if err != nil {
		return nil, 0, err
	}
	if !crlfLine(line) {
		return nil, 0, errChunkSize
	}
	body := line[:len(line)-2]
	var size int64
	k := 0
	for ; k < len(body); k++ {
		c := body[k]
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c|0x20 && c|0x20 <= 'f':
			d = c | 0x20 - 'a' + 10
		default:
			goto ext
		}
		if k == 15 {
			return nil, 0, errChunkSize
		}
		size = size<<4 | int64(d)
	}
ext:
	if k == 0 {
		return nil, 0, errChunkSize
	}
	if rest := trimOWS(body[k:]); len(rest) > 0 && (rest[0] != ';' || !validValue(rest)) || len(rest) == 0 && k < len(body) {
		return nil, 0, errChunkSize
	}
	return line, size, nil
}

// readLine returns the next line including its LF, consuming it.
func readLine(dst *bufio.Writer, src *bufio.Reader, refresh func()) ([]byte, error) {
	if src.Buffered() == 0 {
		if dst != nil {
			if err := dst.Flush(); err != nil {
				return nil, err
			}
		}
		if refresh != nil {
			refresh()
		}
	}
	line, err := src.ReadSlice('\n')
	if err != nil {
		return nil, unexpected(err)
	}
	return line, nil
}

// isFraming reports whether err is a chunked body breaking the framing
// rules (as opposed to a connection failing).
func isFraming(err error) bool {
	return errors.Is(err, errChunkSize) || errors.Is(err, errChunkEnd) || errors.Is(err, errTrailer)
}

var errBodyTooLarge = errors.New("body exceeds max-body-bytes")

// readBody reads a whole body framed as h says (decoding chunks, dropping
// trailers) into a buffer of at most limit bytes: for the bridges to and
// from HTTP/2, which re-frame it. eof says a body without framing runs to
// the end of the connection (responses).
func readBody(src *bufio.Reader, h *head, limit int, eof bool, refresh func()) ([]byte, error) {
	var out bytes.Buffer
	add := func(n int64) error {
		if int64(out.Len())+n > int64(limit) {
			return errBodyTooLarge
		}
		for n > 0 {
			if src.Buffered() == 0 && refresh != nil {
				refresh()
			}
			buf, err := src.Peek(int(min(int64(max(src.Buffered(), 1)), n)))
			if err != nil && len(buf) == 0 {
				return unexpected(err)
			}
			out.Write(buf)
			src.Discard(len(buf))
			n -= int64(len(buf))
		}
		return nil
	}
	switch {
	case h.chunked:
		for {
			_, size, err := chunkHeader(nil, src, refresh)
			if err != nil {
				return nil, err
			}
			if size == 0 {
				err := copyTrailers(nil, src, refresh)
				return out.Bytes(), err
			}
			if err := add(size); err != nil {
				return nil, err
			}
			if err := chunkEnd(nil, src, refresh); err != nil {
				return nil, err
			}
		}
	case h.length > 0:
		err := add(h.length)
		return out.Bytes(), err
	case h.length < 0 && eof:
		if refresh != nil {
			refresh()
		}
		b, err := io.ReadAll(io.LimitReader(src, int64(limit)+1))
		if err == nil && len(b) > limit {
			err = errBodyTooLarge
		}
		return b, err
	}
	return nil, nil
}
