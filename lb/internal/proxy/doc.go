// Package proxy is shoal-lb's data path: one listener whose connections are
// classified by their first bytes (or by ALPN under TLS) and served by one
// of two engines per protocol, all picking backends through package
// balance:
//
//   - HTTP/1.1: the raw engine (h1raw.go, default) copies request and
//     response heads and bodies between the client and pooled backend
//     connections, parsing only framing; --h1-engine fasthttp serves
//     through valyala/fasthttp instead. Upgrade requests (WebSocket) are
//     passed through byte for byte.
//   - HTTP/2 and gRPC: the mux engine (mux.go, default) forwards frames per
//     stream to h2c or h2 backend connections with end-to-end flow control;
//     --h2-engine nethttp uses x/net/http2's Server and Transport instead.
//
// Both defaults were chosen by measurement (deploy/bench/lb.sh): they cost
// a fraction of the library engines' CPU per request.
//
// The package must never pick backends itself (balance does), never block
// the accept loop on one client, never retry a request that may have
// reached a backend unless it is safe to replay, and never hide why a
// request failed: every status and gRPC status it makes up says what went
// wrong, naming the backend and fleet.
package proxy
