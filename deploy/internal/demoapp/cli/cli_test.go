package cli

import (
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
