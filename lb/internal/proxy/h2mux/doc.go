// Package h2mux is shoal-lb's HTTP/2 and gRPC engine: a frame-level proxy.
//
// net/http-style proxying (x/net/http2 Server + Transport) cost ~100-150 µs
// per gRPC call here: a goroutine per stream on each side, channel hops, and
// one write syscall per frame. This engine instead forwards frames: one
// reader goroutine per client connection (client.go) and per backend
// connection (backend.go), header blocks re-encoded with each connection's
// HPACK state, DATA payloads copied once into the destination's write
// buffer, and writes flushed once per read batch (conn.go). Flow control is
// end to end: a sender's window is only re-opened once its bytes were
// forwarded, so buffering per stream is bounded by the window we advertise.
//
// Locking: each connection's mu guards its writer, windows and stream map,
// and the half of every stream (stream.go) flowing towards it. A stream's
// life-cycle flags are atomics because both connections' readers set them.
// No goroutine holds two connections' locks at once.
//
// Non-gRPC requests for HTTP/1.1 backends are answered through package h1's
// RoundTrip. The engine must never pick or retry outside balance.Attempt,
// and never leave a stream without an answer: every stream ends with the
// backend's response, a gRPC status or HTTP status made up here that says
// why, or a reset.
package h2mux
