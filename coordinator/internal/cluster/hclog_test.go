package cluster

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestHCLogAdapter(t *testing.T) {
	var buf bytes.Buffer
	l := NewHCLog(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), hclog.Info)
	for _, tc := range []struct {
		name string
		log  func()
		want string // "" means nothing is written
	}{
		{"debug below level", func() { l.Debug("chatty", "k", 1) }, ""},
		{"info with args", func() { l.Info("started", "peer", "n2") }, `level=INFO msg=started peer=n2`},
		{"named and with", func() { l.Named("raft").With("term", 3).Warn("election") }, `level=WARN msg=election logger=raft term=3`},
		{"error", func() { l.Error("failed", "error", "boom") }, `level=ERROR msg=failed error=boom`},
		{"standard logger", func() { l.StandardLogger(nil).Println("from log") }, `msg="from log"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			buf.Reset()
			tc.log()
			got := buf.String()
			if tc.want == "" {
				if got != "" {
					t.Fatalf("wrote %q, want nothing", got)
				}
				return
			}
			if !strings.Contains(got, tc.want) {
				t.Fatalf("wrote %q, want it to contain %q", got, tc.want)
			}
		})
	}
}
