// Package upstream is what shoal-lb's engines share: the per-backend state
// hung off balance.Backend (connection pools, long-lived streams a drain
// may have to end, the dialer), the one list of hop-by-hop header fields,
// the words used to say why a backend could not be reached, and the gRPC
// statuses the proxy makes up.
//
// It must never pick backends (balance does) nor parse a protocol (the
// engines h1 and h2mux do).
package upstream
