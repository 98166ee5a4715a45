//go:build smoketmp

package sandbox

import (
	"context"
	"os"
	"testing"
	"time"
)

func TestSmokeTmp(t *testing.T) {
	opts := DefaultOptions()
	opts.BinDir = "../../../bin"
	opts.Ready = 15 * time.Second
	opts.Dir = "/tmp/sbx-smoke"
	opts.KeepDir = true
	opts.LogLevel = "info"
	sb, err := Start(context.Background(), opts)
	t.Logf("start: %v", err)
	entries, _ := os.ReadDir(opts.Dir + "/tls")
	for _, e := range entries {
		t.Log("tls/", e.Name())
	}
	if sb != nil {
		sb.Close()
	}
	b, _ := os.ReadFile(opts.Dir + "/logs/coordinator-n2.log")
	t.Logf("n2 log tail: %s", tail(string(b)))
}

func tail(s string) string {
	if len(s) > 1500 {
		return s[len(s)-1500:]
	}
	return s
}
