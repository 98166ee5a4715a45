package h1

import "testing"

// BenchmarkParseHead measures the accept path's parse of a typical
// browser-sized request head.
func BenchmarkParseHead(b *testing.B) {
	raw := []byte("GET /api/v1/items?id=42 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) Gecko/20100101 Firefox/120.0\r\nAccept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\nConnection: keep-alive\r\nCookie: session=abcdef0123456789; theme=dark\r\nX-Forwarded-For: 10.0.0.1\r\nContent-Length: 0\r\n\r\n")
	var h head
	b.ReportAllocs()
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		if err := parseHead(raw, true, &h); err != nil {
			b.Fatal(err)
		}
	}
}
