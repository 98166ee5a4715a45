package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestBadFlagsNameTheField(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "zero capacity", args: []string{"--capacity", "0"}, wantErr: "capacity (0) must be"},
		{name: "negative queue", args: []string{"--queue", "-2"}, wantErr: "queue (-2) must be >= 0"},
		{name: "bad listen", args: []string{"--listen", "nowhere"}, wantErr: `listen ("nowhere")`},
		{name: "unknown flag", args: []string{"--capacityy", "3"}, wantErr: "unknown flag: --capacityy"},
		{name: "bad log level", args: []string{"--log-level", "loud"}, wantErr: `log-level ("loud")`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := newRootCmd()
			cmd.SetArgs(tc.args)
			err := cmd.ExecuteContext(context.Background())
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestMainExitCodes(t *testing.T) {
	getenv := func(string) string { return "" }
	var stdout, stderr bytes.Buffer
	if code := Main(context.Background(), []string{"--capacity", "0"}, &stdout, &stderr, getenv); code != 1 || !strings.Contains(stderr.String(), "shoal-demoapp: ") {
		t.Fatalf("bad flag: exit %d, stderr %q; want 1 and the error", code, stderr.String())
	}
	// A stop (SIGTERM in main) is a clean exit: the server drains and Main
	// returns 0.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	stderr.Reset()
	if code := Main(ctx, []string{"--listen", "127.0.0.1:0", "--instance-id", "i-0test", "--log-level", "error"}, &stdout, &stderr, getenv); code != 0 {
		t.Fatalf("stopped server: exit %d, stderr %q; want 0", code, stderr.String())
	}
}
