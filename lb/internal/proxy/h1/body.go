package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
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
		if err := copyN(dst, src, size+2, refresh); err != nil {
			return err
		}
	}
}

// copyTrailers copies a chunked body's trailer section, up to the empty
// line that ends it.
func copyTrailers(dst *bufio.Writer, src *bufio.Reader, refresh func()) error {
	for {
		t, err := readLine(dst, src, refresh)
		if err != nil {
			return err
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

// chunkHeader reads a chunk-size line.
func chunkHeader(dst *bufio.Writer, src *bufio.Reader, refresh func()) ([]byte, int64, error) {
	line, err := readLine(dst, src, refresh)
	if err != nil {
		return nil, 0, err
	}
	sz := line
	if i := bytes.IndexByte(sz, ';'); i >= 0 {
		sz = sz[:i]
	}
	size, err := strconv.ParseInt(string(trimOWS(bytes.TrimRight(sz, "\r\n"))), 16, 64)
	if err != nil || size < 0 {
		return nil, 0, errors.New("malformed chunk size")
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
			if _, err := src.Discard(2); err != nil {
				return nil, unexpected(err)
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
