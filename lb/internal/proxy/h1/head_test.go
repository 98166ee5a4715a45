package h1

import (
	"bufio"
	"bytes"
	"strings"
	"testing"
)

func TestParseHead(t *testing.T) {
	cases := []struct {
		name, raw string
		isReq     bool
		check     func(*head) bool
		bad       bool
	}{
		{"request framing", "POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n", true,
			func(h *head) bool {
				return string(h.method) == "POST" && string(h.target) == "/x" && h.minor == 1 && h.length == 5 && h.connKeep && h.connUpg && h.upgrade && string(h.host) == "a"
			}, false},
		{"chunked last", "PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", true,
			func(h *head) bool { return h.chunked && h.length == -1 }, false},
		{"length and chunked", "PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", true, nil, true},
		{"response", "HTTP/1.0 204 No Content\r\nConnection: close\r\n\r\n", false,
			func(h *head) bool { return h.status == 204 && h.minor == 0 && h.connClose }, false},
		{"chunked not last", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", true, nil, true},
		{"conflicting lengths", "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", true, nil, true},
		{"obsolete folding", "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", true, nil, true},
		{"bad version", "GET / HTTP/2.0\r\n\r\n", true, nil, true},
		{"bad status", "HTTP/1.1 0x0 what\r\n\r\n", false, nil, true},
		{"status without reason", "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", false, func(h *head) bool { return h.status == 200 && h.length == 0 }, false},
		{"status glued to reason", "HTTP/1.1 200OK\r\n\r\n", false, nil, true},
		{"response CL and TE", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", false, nil, true},
		{"response differing CL", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", false, nil, true},
		{"response TE in HTTP/1.0", "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, nil, true},
		{"tab in a value is legal", "GET / HTTP/1.1\r\nHost: a\r\nX: a\tb\r\n\r\n", true, func(h *head) bool { return true }, false},
		{"obs-text in a value is legal", "GET / HTTP/1.1\r\nHost: a\r\nX: caf\xc3\xa9\r\n\r\n", true, func(h *head) bool { return true }, false},
		{"DEL in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n", true, nil, true},
		{"HTTP/1.0 without Host", "GET / HTTP/1.0\r\n\r\n", true, func(h *head) bool { return h.minor == 0 }, false},
		{"empty Host", "GET / HTTP/1.1\r\nHost:\r\n\r\n", true, func(h *head) bool { return h.hasHostHdr && len(h.host) == 0 }, false},
		{"absolute-form", "GET http://a/b HTTP/1.1\r\nHost: a\r\n\r\n", true, func(h *head) bool { return string(h.target) == "http://a/b" }, false},
		{"asterisk for OPTIONS", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", true, func(h *head) bool { return true }, false},
		{"asterisk for GET", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", true, nil, true},
		{"raw 8-bit target", "GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", true, nil, true},
		{"two spaces after method", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", true, nil, true},
		{"CL too long", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9999999999999999999\r\n\r\n", true, nil, true},
		{"empty CL", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", true, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var h head
			err := parseHead([]byte(tc.raw), tc.isReq, &h)
			if tc.bad != (err != nil) {
				t.Fatalf("err = %v, want bad=%v", err, tc.bad)
			}
			if tc.check != nil && !tc.check(&h) {
				t.Fatalf("parsed %+v", h)
			}
		})
	}
}

func TestWriteHeadersLeavesHopByHopOut(t *testing.T) {
	raw := "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: ws\r\nKeep-Alive: 5\r\nTE: trailers\r\nProxy-Authorization: x\r\nExpect: 100-continue\r\nX-Forwarded-For: 1.2.3.4\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
	var h head
	if err := parseHead([]byte(raw), true, &h); err != nil {
		t.Fatal(err)
	}
	out := func(forUpgrade bool) string {
		var b bytes.Buffer
		w := bufio.NewWriter(&b)
		writeHeaders(w, &h, true, forUpgrade)
		w.Flush()
		return b.String()
	}
	if got, want := out(false), "Host: a\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n"; got != want {
		t.Errorf("request: got %q, want %q", got, want)
	}
	if got, want := out(true), "Host: a\r\nConnection: Upgrade\r\nUpgrade: ws\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n"; got != want {
		t.Errorf("upgrade: got %q, want %q", got, want)
	}
}

func TestConnectionNominatesHopByHopFields(t *testing.T) {
	raw := "GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s\r\nX-Kept: k\r\n\r\n"
	var h head
	if err := parseHead([]byte(raw), true, &h); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	writeHeaders(w, &h, true, false)
	w.Flush()
	if got, want := b.String(), "Host: a\r\nX-Kept: k\r\n"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	many := "GET / HTTP/1.1\r\nConnection: a, b, c, d, e, f, g, h, i\r\n\r\n"
	if err := parseHead([]byte(many), true, &h); err == nil {
		t.Fatal("nine Connection options accepted; only eight are kept")
	}
}

func TestReadBody(t *testing.T) {
	cases := []struct {
		name, body string
		h          head
		eof        bool
		limit      int
		want       string
		err        bool
	}{
		{"length", "hello!", head{length: 5}, false, 100, "hello", false},
		{"chunked with trailer", "3;ext=1\r\nhel\r\n2\r\nlo\r\n0\r\nX-Sum: 5\r\n\r\nrest", head{length: -1, chunked: true}, false, 100, "hello", false},
		{"until eof", "all of it", head{length: -1}, true, 100, "all of it", false},
		{"no framing, request", "ignored", head{length: -1}, false, 100, "", false},
		{"over the limit", "hello", head{length: 5}, false, 4, "", true},
		{"chunked over the limit", "5\r\nhello\r\n0\r\n\r\n", head{length: -1, chunked: true}, false, 4, "", true},
		{"truncated", "hel", head{length: 5}, false, 100, "", true},
		{"bad chunk size", "zz\r\n", head{length: -1, chunked: true}, false, 100, "", true},
		{"chunk size with sign", "+5\r\nhello\r\n0\r\n\r\n", head{length: -1, chunked: true}, false, 100, "", true},
		{"chunk size of 16 digits", "0000000000000005\r\nhello\r\n0\r\n\r\n", head{length: -1, chunked: true}, false, 100, "", true},
		{"chunk size of 15 digits", "000000000000005\r\nhello\r\n0\r\n\r\n", head{length: -1, chunked: true}, false, 100, "hello", false},
		{"chunk size with trailing space", "5 \r\nhello\r\n0\r\n\r\n", head{length: -1, chunked: true}, false, 100, "", true},
		{"chunk ext with BWS", "5 ; a=b\r\nhello\r\n0\r\n\r\n", head{length: -1, chunked: true}, false, 100, "hello", false},
		{"chunk ext with NUL", "5;a\x00\r\nhello\r\n0\r\n\r\n", head{length: -1, chunked: true}, false, 100, "", true},
		{"chunk data without CRLF", "5\r\nhelloXX0\r\n\r\n", head{length: -1, chunked: true}, false, 100, "", true},
		{"chunk line with bare LF", "5\nhello\r\n0\r\n\r\n", head{length: -1, chunked: true}, false, 100, "", true},
		{"trailer without colon", "0\r\nX-Sum 5\r\n\r\n", head{length: -1, chunked: true}, false, 100, "", true},
		{"trailer ended by bare LF", "0\r\n\n", head{length: -1, chunked: true}, false, 100, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readBody(bufio.NewReader(strings.NewReader(tc.body)), &tc.h, tc.limit, tc.eof, nil)
			if tc.err != (err != nil) || (!tc.err && string(got) != tc.want) {
				t.Fatalf("got %q, %v; want %q, err=%v", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestCopyChunkedIsVerbatim(t *testing.T) {
	in := "3;ext=1\r\nhel\r\n2\r\nlo\r\n0\r\nX-Sum: 5\r\n\r\n"
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	if err := copyChunked(w, bufio.NewReader(strings.NewReader(in+"next")), nil); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	if b.String() != in {
		t.Fatalf("copied %q, want %q", b.String(), in)
	}
}

func TestRoundTripRequestCheck(t *testing.T) {
	ok := Request{Method: "GET", Path: "/a", Authority: "x", Header: [][2]string{{"x-a", "b\tc"}}}
	if err := ok.check(); err != nil {
		t.Fatalf("valid request refused: %v", err)
	}
	for name, mut := range map[string]func(*Request){
		"CRLF in a value":  func(r *Request) { r.Header = [][2]string{{"x-a", "b\r\nGET /smuggled HTTP/1.1"}} },
		"NUL in a value":   func(r *Request) { r.Header = [][2]string{{"x-a", "b\x00"}} },
		"space in a name":  func(r *Request) { r.Header = [][2]string{{"x a", "b"}} },
		"space in path":    func(r *Request) { r.Path = "/a HTTP/1.1\r\nHost: y\r\n\r\nGET /b" },
		"method not token": func(r *Request) { r.Method = "GET /" },
		"CRLF in host":     func(r *Request) { r.Authority = "x\r\nX: y" },
	} {
		r := ok
		mut(&r)
		if err := r.check(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// validValue's word-at-a-time path must agree with the byte table for
// every byte in every position of a word.
func TestValidValueMatchesTable(t *testing.T) {
	for c := range 256 {
		for pos := range 11 {
			b := []byte("abcdefghijk")
			b[pos] = byte(c)
			if got, want := validValue(b), validText(b); got != want {
				t.Fatalf("byte %#x at %d: validValue %v, table %v", c, pos, got, want)
			}
		}
	}
}
