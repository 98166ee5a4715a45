package loadgen

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestMainFlags(t *testing.T) {
	cases := []struct {
		name   string
		args   []string
		errHas string
	}{
		{"no coordinator", []string{"--fleet", "web", "--agents", "5"}, "coordinator"},
		{"no agents", []string{"--coordinator", "127.0.0.1:1", "--fleet", "web"}, "agents (0)"},
		{"warmup past duration", []string{"--coordinator", "127.0.0.1:1", "--fleet", "web", "--agents", "1", "--duration", "1s", "--warmup", "2s"}, "warmup (2s)"},
		{"unknown flag", []string{"--agnets", "1"}, "unknown flag"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(context.Background(), tc.args, &stdout, &stderr, func(string) string { return "" })
			if code != 1 || !strings.Contains(stderr.String(), tc.errHas) {
				t.Fatalf("exit %d, stderr %q; want 1 and one containing %q", code, stderr.String(), tc.errHas)
			}
			if stdout.Len() != 0 {
				t.Fatalf("stdout %q on error; scripts read the summary from it", stdout.String())
			}
		})
	}
}
