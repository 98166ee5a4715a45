package drain

import (
	"context"
	"strings"
	"testing"
	"time"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

func TestHook(t *testing.T) {
	cases := []struct {
		name    string
		command string
		timeout time.Duration
		ok      bool
		exit    int32
		outHas  string
		errHas  string
		maxTime time.Duration
	}{
		{"success", "echo drained", time.Minute, true, 0, "drained", "", 10 * time.Second},
		{"failure", "echo nope >&2; exit 3", time.Minute, false, 3, "nope", "status 3", 10 * time.Second},
		{"no hook", "", time.Minute, true, 0, "no --on-drain", "", time.Second},
		{"deadline kills the group", "sleep 30 & sleep 30; wait", 200 * time.Millisecond, false, -1, "", "killed", 10 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
			defer cancel()
			start := time.Now()
			res := Hook{Command: tc.command, WaitDelay: 100 * time.Millisecond}.Run(ctx, &shoalv1.AgentCommand{Id: "c1", Kind: shoalv1.CommandKind_COMMAND_KIND_DRAIN})
			if took := time.Since(start); took > tc.maxTime {
				t.Errorf("took %s", took)
			}
			if res.GetId() != "c1" || res.GetOk() != tc.ok || !strings.Contains(res.GetOutput(), tc.outHas) || !strings.Contains(res.GetError(), tc.errHas) {
				t.Errorf("result = %v", res)
			}
			if tc.command != "" && res.GetExitCode() != tc.exit {
				t.Errorf("exit code = %d, want %d", res.GetExitCode(), tc.exit)
			}
		})
	}
}

func TestOutputCapped(t *testing.T) {
	res := Hook{Command: "head -c 100000 /dev/zero | tr '\\0' x"}.Run(context.Background(), &shoalv1.AgentCommand{})
	if !res.GetOk() || len(res.GetOutput()) != maxOutput {
		t.Errorf("ok %v, output %d bytes, want %d", res.GetOk(), len(res.GetOutput()), maxOutput)
	}
}
