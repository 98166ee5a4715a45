// Package proxy is shoal-lb's data path: one listener that serves HTTP/1.1
// (valyala/fasthttp, chosen because net/http's per-request cost was 3-6× the
// target) and HTTP/2 (x/net/http2, h2c prior knowledge or TLS+ALPN), and
// forwards each request or gRPC call to a backend picked by package balance.
//
// It must never pick backends itself (balance does), never block the accept
// loop on one client, and never hide why a request failed: every 5xx and
// every gRPC status it makes up says what went wrong, naming the backend.
package proxy
