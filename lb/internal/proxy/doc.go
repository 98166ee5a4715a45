// Package proxy is shoal-lb's data path: one listener whose connections are
// classified by their first bytes (or by ALPN under TLS) and served by one
// engine per protocol, both picking backends through package balance:
//
//   - HTTP/1.1: package h1 copies request and response heads and bodies
//     between the client and pooled backend connections, parsing only
//     framing. Upgrade requests (WebSocket) are passed through byte for
//     byte.
//   - HTTP/2 and gRPC: package h2mux forwards frames per stream to h2c or h2
//     backend connections with end-to-end flow control.
//
// Package upstream holds what both share: per-backend pools and drain, the
// hop-by-hop list, error words and gRPC statuses. This package keeps the
// listener, the classification, shutdown and the engine interface.
//
// The package must never pick backends itself (balance does), never block
// the accept loop on one client, never retry a request that may have
// reached a backend unless it is safe to replay, and never hide why a
// request failed: every status and gRPC status it makes up says what went
// wrong, naming the backend and fleet.
package proxy
