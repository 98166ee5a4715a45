package cli

import (
	"bytes"
	"strings"
	"testing"
)

func TestServeRejectsBadConfig(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"alarm interval above 10s", []string{"serve", "--addr", "127.0.0.1:0", "--alarm-interval", "1m"}, "alarm-interval"},
		{"non-loopback instance prefix", []string{"serve", "--addr", "127.0.0.1:0", "--instance-ip-prefix", "10.1.2"}, "instance-ip-prefix"},
		{"bad log level", []string{"serve", "--log-level", "loud"}, "log-level"},
		{"unknown flag", []string{"serve", "--region", "eu-west-1"}, "unknown flag"},
		{"positional argument", []string{"serve", "extra"}, "unknown command"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := run(c.args, &out, &errb); code != 1 {
				t.Fatalf("exit code %d, want 1", code)
			}
			if !strings.Contains(errb.String(), c.want) {
				t.Fatalf("stderr %q does not mention %q", errb.String(), c.want)
			}
		})
	}
}
