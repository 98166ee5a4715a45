package upstream

import (
	"testing"
	"time"
)

func TestHop(t *testing.T) {
	for _, name := range []string{"Connection", "proxy-connection", "Keep-Alive", "TE", "transfer-encoding", "Upgrade", "Proxy-Authenticate", "PROXY-AUTHORIZATION"} {
		if !Hop(name) || !Hop([]byte(name)) {
			t.Errorf("%s is hop-by-hop", name)
		}
	}
	for _, name := range []string{"Trailer", "Content-Length", "Host", "Authorization", "X-Forwarded-For", "Tee", "grpc-timeout", ""} {
		if Hop(name) {
			t.Errorf("%s is end-to-end", name)
		}
	}
}

func TestParseGRPCTimeout(t *testing.T) {
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"100m", 100 * time.Millisecond, true},
		{"5S", 5 * time.Second, true},
		{"2M", 2 * time.Minute, true},
		{"1H", time.Hour, true},
		{"250u", 250 * time.Microsecond, true},
		{"7n", 7, true},
		{"m", 0, false},
		{"100", 0, false},
		{"10x", 0, false},
		{"-1S", 0, false},
		{"123456789S", 0, false}, // more than 8 digits
	}
	for _, tc := range cases {
		got, ok := ParseGRPCTimeout(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseGRPCTimeout(%q) = %s, %v; want %s, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestEncodeGRPCMessage(t *testing.T) {
	if got := EncodeGRPCMessage("50% off\nnow é"); got != "50%25 off%0Anow %C3%A9" {
		t.Fatalf("got %q", got)
	}
}
