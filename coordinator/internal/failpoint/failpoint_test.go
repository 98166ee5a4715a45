package failpoint

import (
	"strings"
	"sync"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name, in, wantErr string
		want              map[string]string
	}{
		{name: "empty", in: "", want: map[string]string{}},
		{name: "two", in: "scaler.after-commit=exit, drain.before-terminate=panic", want: map[string]string{"scaler.after-commit": "exit", "drain.before-terminate": "panic"}},
		{name: "no action", in: "scaler.after-commit", wantErr: "want name=action"},
		{name: "bad action", in: "a=sleep", wantErr: `unknown action "sleep"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || len(got) != len(tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Fatalf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestInjectOnlyWhenEnabled(t *testing.T) {
	t.Setenv(Env, "x=exit")
	exits := 0
	exitFn = func() { exits++ }
	defer func() { exitFn = nil; enabled = false; once = sync.Once{} }()

	was := enabled
	enabled = false
	Inject("x")
	if exits != 0 {
		t.Fatal("a build without the failpoints tag must ignore SHOAL_FAILPOINT")
	}
	enabled = true
	once = sync.Once{}
	Inject("y")
	Inject("x")
	if exits != 1 {
		t.Fatalf("exits = %d, want 1", exits)
	}
	enabled = was
}
