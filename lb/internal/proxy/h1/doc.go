// Package h1 is shoal-lb's HTTP/1.1 engine. It reads a request head,
// copies it to a pooled backend connection with the hop-by-hop fields left
// out, and copies the response back the same way: it parses only what
// framing needs (method, version, Content-Length, Transfer-Encoding,
// Connection, Upgrade, Expect) and streams bodies through the connections'
// buffers. Upgrade requests (WebSocket) are passed through byte for byte.
// Because heads and chunked framing are copied verbatim, parsing is strict
// (RFC 9112, RFC 9110): anything a backend could frame differently is
// refused, never guessed at (ARCHITECTURE.md, Load balancer).
//
// With --h1-engine loop (the default on Linux), plain-TCP clients are
// served from event loops, one per P but one, that read a socket only
// after epoll said it is readable (loop.go); a loop hands what it does
// not serve (bodies, Upgrade, chunked responses) to the goroutine code
// here. --h1-engine raw serves every connection from a goroutine.
//
// With --backend-protocol h2c|h2 it sends requests over HTTP/2 instead,
// buffering bodies; and it answers HTTP/2 clients' non-gRPC requests for
// HTTP/1.1 backends (RoundTrip).
//
// It must never parse more of a message than framing needs, never replay a
// request that may have reached a backend unless it is safe to, and never
// pick or retry outside balance.Attempt.
package h1
