package upstream

import (
	"strconv"
	"strings"
	"time"
)

// gRPC status codes the proxy makes up itself.
const (
	GRPCDeadlineExceeded  = 4
	GRPCResourceExhausted = 8
	GRPCUnavailable       = 14
)

// ContentTypeText is the type of every error body the proxy writes.
const ContentTypeText = "text/plain; charset=utf-8"

// IsGRPC reports whether a content type is gRPC's.
func IsGRPC(ct string) bool { return strings.HasPrefix(ct, "application/grpc") }

// EncodeGRPCMessage percent-encodes as the gRPC HTTP/2 spec asks.
func EncodeGRPCMessage(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= ' ' && c <= '~' && c != '%' {
			sb.WriteByte(c)
			continue
		}
		sb.WriteByte('%')
		sb.WriteByte("0123456789ABCDEF"[c>>4])
		sb.WriteByte("0123456789ABCDEF"[c&15])
	}
	return sb.String()
}

// ParseGRPCTimeout parses a grpc-timeout header ("100m", "5S", ...).
func ParseGRPCTimeout(v string) (time.Duration, bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	return time.Duration(n) * unit, true
}

// Idempotent reports whether a request with this method may be sent twice
// (RFC 9110 9.2.2).
func Idempotent[T ~string | ~[]byte](method T) bool {
	switch string(method) {
	case "GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE":
		return true
	}
	return false
}
