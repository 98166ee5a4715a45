package h1

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// The fuzz tests check what request smuggling and response splitting
// exploit: that two readings of the same bytes differ. A head the parser
// accepts must read back identically from its canonical form (one
// "Name: value" per field, CRLF endings) and, for requests, from the head
// this engine forwards, so a backend reading either sees the same framing.
// Seeds: testdata/fuzz, which holds the smuggling corpus of
// ../smuggle_test.go.

// summary renders everything parseHead extracted, fields included.
func summary(h *head) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%q %q %d %d %d %v %v %v %v %v %v %q %q %v|", h.method, h.target, h.minor, h.status, h.length, h.chunked,
		h.connClose, h.connKeep, h.connUpg, h.upgrade, h.expect100, h.xff, h.host, h.hasHostHdr)
	for _, o := range h.connOpts[:h.nOpts] {
		fmt.Fprintf(&b, "%q,", o)
	}
	eachField(h.raw[len(h.line)+2:len(h.raw)-2], func(name, val []byte) bool {
		fmt.Fprintf(&b, "%q=%q;", name, val)
		return true
	})
	return b.String()
}

// canonical re-serializes an accepted head.
func canonical(h *head) []byte {
	var b bytes.Buffer
	b.Write(h.line)
	b.Write(crlf)
	eachField(h.raw[len(h.line)+2:len(h.raw)-2], func(name, val []byte) bool {
		b.Write(name)
		b.WriteString(": ")
		b.Write(val)
		b.Write(crlf)
		return true
	})
	b.Write(crlf)
	return b.Bytes()
}

// readOne reads and parses the first head in data as the engine does,
// with the engine's smallest head limit; re-reads of a canonical or
// forwarded form (which may be longer) get room to spare.
func readOne(data []byte, isReq bool, h *head) (int, error) { return readLimit(data, isReq, h, 4096) }

func readLimit(data []byte, isReq bool, h *head, limit int) (int, error) {
	br := bufio.NewReaderSize(bytes.NewReader(data), limit)
	n, err := readHead(br, limit)
	if err != nil {
		return 0, err
	}
	raw, _ := br.Peek(n)
	return n, parseHead(raw, isReq, h)
}

func fuzzHead(t *testing.T, data []byte, isReq bool) {
	var h head
	if _, err := readOne(data, isReq, &h); err != nil {
		return
	}
	canon := canonical(&h)
	var h2 head
	n, err := readLimit(canon, isReq, &h2, 2*len(canon)+64)
	if err != nil {
		t.Fatalf("accepted %q but refused its canonical form %q: %v", h.raw, canon, err)
	}
	if n != len(canon) {
		t.Fatalf("canonical form %q read as %d bytes, want %d", canon, n, len(canon))
	}
	if s1, s2 := summary(&h), summary(&h2); s1 != s2 {
		t.Fatalf("canonical form reads differently:\n%s\n%s", s1, s2)
	}
	if !isReq {
		return
	}
	// What a backend gets: the forwarded head must frame the same way.
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	w.Write(h.line)
	w.Write(crlf)
	writeHeaders(w, &h, true, false)
	w.WriteString("X-Forwarded-For: 192.0.2.1\r\n\r\n")
	w.Flush()
	var f head
	n, err = readLimit(b.Bytes(), true, &f, 2*b.Len()+64)
	if err != nil || n != b.Len() {
		t.Fatalf("accepted %q but the forwarded head %q reads as %d bytes, err %v", h.raw, b.Bytes(), n, err)
	}
	if f.length != h.length || f.chunked != h.chunked || string(f.method) != string(h.method) || string(f.target) != string(h.target) || string(f.host) != string(h.host) {
		t.Fatalf("forwarded head frames differently:\n%s\n%s", summary(&h), summary(&f))
	}
}

func FuzzRequestHead(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzHead(t, data, true) })
}

func FuzzResponseHead(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
	f.Fuzz(func(t *testing.T, data []byte) { fuzzHead(t, data, false) })
}

// FuzzChunkedBody checks that the decoder (readBody, for the HTTP/2
// bridges) and the verbatim copier (copyChunked, for HTTP/1.1 backends)
// agree on whether a chunked body is valid and where it ends, that the
// copy is the input unchanged, and that the decoded body survives a
// canonical re-encoding.
func FuzzChunkedBody(f *testing.F) {
	f.Add([]byte("3;ext=1\r\nhel\r\n2\r\nlo\r\n0\r\nX-Sum: 5\r\n\r\nnext"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ch := head{length: -1, chunked: true}
		r1 := bytes.NewReader(data)
		b1 := bufio.NewReaderSize(r1, 4096)
		body, err1 := readBody(b1, &ch, len(data)+1, false, nil)
		used1 := len(data) - r1.Len() - b1.Buffered()

		r2 := bytes.NewReader(data)
		b2 := bufio.NewReaderSize(r2, 4096)
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		err2 := copyChunked(w, b2, nil)
		w.Flush()
		used2 := len(data) - r2.Len() - b2.Buffered()
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("decoder err %v, copier err %v", err1, err2)
		}
		if err1 != nil {
			return
		}
		if used1 != used2 {
			t.Fatalf("decoder ended the body after %d bytes, copier after %d", used1, used2)
		}
		if !bytes.Equal(out.Bytes(), data[:used2]) {
			t.Fatalf("copy %q differs from the input %q", out.Bytes(), data[:used2])
		}
		var re bytes.Buffer
		if len(body) > 0 {
			fmt.Fprintf(&re, "%x\r\n%s\r\n", len(body), body)
		}
		re.WriteString("0\r\n\r\n")
		again, err := readBody(bufio.NewReader(&re), &ch, len(body)+1, false, nil)
		if err != nil || !bytes.Equal(again, body) {
			t.Fatalf("re-encoded body reads as %q, %v; want %q", again, err, body)
		}
	})
}
