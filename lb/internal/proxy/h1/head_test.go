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
		{"chunked wins over length", "PUT / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", true,
			func(h *head) bool { return h.chunked && h.length == -1 }, false},
		{"response", "HTTP/1.0 204 No Content\r\nConnection: close\r\n\r\n", false,
			func(h *head) bool { return h.status == 204 && h.minor == 0 && h.connClose }, false},
		{"chunked not last", "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", true, nil, true},
		{"conflicting lengths", "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", true, nil, true},
		{"obsolete folding", "GET / HTTP/1.1\r\nX: a\r\n b\r\n\r\n", true, nil, true},
		{"bad version", "GET / HTTP/2.0\r\n\r\n", true, nil, true},
		{"bad status", "HTTP/1.1 0x0 what\r\n\r\n", false, nil, true},
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
