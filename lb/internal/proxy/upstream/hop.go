package upstream

// The one list of hop-by-hop header fields, for every engine and direction.
//
// RFC 9110 7.6.1 makes Connection and the fields it names hop-by-hop (the
// HTTP/1.1 engine drops the named ones; HTTP/2 has no Connection field), and
// lists Proxy-Connection, Keep-Alive, TE, Transfer-Encoding and Upgrade as
// the ones commonly seen. Proxy-Authenticate and Proxy-Authorization
// (RFC 9110 11.7) address the next proxy only; shoal-lb asks no proxy
// credentials, so it is that proxy and consumes them: client credentials
// meant for a proxy never reach backends, and a backend cannot demand them
// through a gateway. Trailer is not hop-by-hop (RFC 9110 6.6.2): it only
// announces the trailer fields, which both engines carry.
//
// Before this list there were five that disagreed: the fasthttp engine kept
// Transfer-Encoding to itself and dropped Trailer, the raw engine dropped
// Trailer but kept Proxy-Authenticate, the frame engine kept both
// Proxy-Authorization and Proxy-Authenticate, and the bridges between
// HTTP/1.1 and HTTP/2 had lists of their own.
//
// Callers apply two exceptions, each where it is needed and said why:
//   - HTTP/2 forwards "te: trailers" (RFC 9113 8.2.2 allows it, and gRPC
//     requires it end to end);
//   - the HTTP/1.1 engine copies a chunked body's framing verbatim, so it
//     sends the Transfer-Encoding it received with it, and it forwards
//     Connection and Upgrade of an Upgrade (WebSocket) request, whose
//     connection it hands over whole.

// Hop reports whether the header field name (any case) is hop-by-hop.
func Hop[T ~string | ~[]byte](name T) bool {
	switch len(name) {
	case 2:
		return EqualFold(name, "te")
	case 7:
		return EqualFold(name, "upgrade")
	case 10:
		return EqualFold(name, "connection") || EqualFold(name, "keep-alive")
	case 16:
		return EqualFold(name, "proxy-connection")
	case 17:
		return EqualFold(name, "transfer-encoding")
	case 18:
		return EqualFold(name, "proxy-authenticate")
	case 19:
		return EqualFold(name, "proxy-authorization")
	}
	return false
}

// EqualFold compares an ASCII header token with a lower-case one.
func EqualFold[T ~string | ~[]byte](a T, lower string) bool {
	if len(a) != len(lower) {
		return false
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
