package simulate

import (
	"errors"
	"math"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestReadTrace(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    Trace
		wantErr string
	}{
		{name: "ok", in: "time,demand\n0,10\n5,20.5\n6,0\n", want: Trace{{0, 10}, {5, 20.5}, {6, 0}}},
		{name: "spaces and comments", in: "# made by hand\ntime, demand\n0, 1\n", want: Trace{{0, 1}}},
		{name: "bad header", in: "t,d\n0,1\n", wantErr: `line 1: header must be "time,demand"`},
		{name: "empty", in: "", wantErr: "empty"},
		{name: "no rows", in: "time,demand\n", wantErr: "no rows"},
		{name: "time not a number", in: "time,demand\n0,1\nabc,2\n", wantErr: `line 3: time: not a number: "abc"`},
		{name: "demand not a number", in: "time,demand\n0,1\n1,x\n", wantErr: `line 3: demand: not a number: "x"`},
		{name: "negative demand", in: "time,demand\n0,1\n1,2\n2,-1\n", wantErr: "line 4: demand: must be >= 0 (got -1)"},
		{name: "negative time", in: "time,demand\n-1,1\n", wantErr: "line 2: time: must be >= 0"},
		{name: "time goes back", in: "time,demand\n0,1\n5,1\n5,2\n", wantErr: "line 4: time: must increase"},
		{name: "three fields", in: "time,demand\n0,1,2\n", wantErr: "line 2: want 2 fields (time,demand), got 3"},
		{name: "infinite demand", in: "time,demand\n0,Inf\n", wantErr: "line 2: demand: not a number"},
		{name: "NaN time", in: "time,demand\nNaN,1\n", wantErr: "line 2: time: not a number"},
		{name: "unterminated quote", in: "time,demand\n0,1\n\"5,2\n", wantErr: "extraneous or missing \" in quoted-field"},
		{name: "time past 31 days", in: "time,demand\n0,1\n1e15,2\n", wantErr: "line 3: time: must be at most 2678400 s"},
		{name: "time 1e8", in: "time,demand\n0,1\n1e8,2\n", wantErr: "line 3: time: must be at most"},
		{name: "time at 31 days", in: "time,demand\n2678400,1\n", want: Trace{{2678400, 1}}},
		{name: "demand 1e308", in: "time,demand\n0,1\n60,1e308\n", wantErr: "line 3: demand: must be at most 1e+09"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ReadTrace(strings.NewReader(c.in))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) || !errors.Is(err, ErrBadTrace) {
					t.Fatalf("err = %v, want ErrBadTrace containing %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("got %v, want %v", got, c.want)
			}
		})
	}
}

func TestTraceSeconds(t *testing.T) {
	got := Trace{{2, 10}, {4, 20}, {5, 30}}.Seconds()
	want := []float64{10, 10, 20, 30}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Seconds = %v, want %v", got, want)
	}
}

// TestCommandRefusesDemandBeyondInt32 is the regression for demand 1e308,
// which wrapped demand-in-instances to a negative int32 and printed negative
// over-provisioning; a demand within MaxDemand can still overflow when each
// instance takes very few requests/s.
func TestCommandRefusesDemandBeyondInt32(t *testing.T) {
	dir := t.TempDir()
	trace := filepath.Join(dir, "t.csv")
	writeFile(t, trace, "time,demand\n0,100\n60,1e9\n120,100\n")
	_, err := runCommand(t, "--trace", trace, "--policy", examplePolicy, "--capacity-per-instance", "0.001")
	if err == nil || !errors.Is(err, ErrBadTrace) || !strings.Contains(err.Error(), "time 60 s: demand") {
		t.Fatalf("err = %v, want ErrBadTrace naming time 60 s and demand", err)
	}
}

func TestConfigValidateDurationBounds(t *testing.T) {
	for _, c := range []struct {
		name  string
		set   func(*Config)
		field string
	}{
		{"launch-delay", func(c *Config) { c.LaunchDelay = MaxDelay + time.Second }, "launch-delay"},
		{"warmup", func(c *Config) { c.Warmup = -time.Second }, "warmup"},
		{"drain", func(c *Config) { c.Drain = time.Duration(math.MaxInt64) }, "drain"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			c.set(&cfg)
			err := cfg.Validate()
			if err == nil || !errors.Is(err, ErrBadConfig) || !strings.HasPrefix(err.Error(), ErrBadConfig.Error()+": "+c.field+":") {
				t.Fatalf("err = %v, want ErrBadConfig naming %s", err, c.field)
			}
		})
	}
	cfg := DefaultConfig()
	cfg.LaunchDelay, cfg.Warmup, cfg.Drain = MaxDelay, MaxDelay, 0
	if err := cfg.Validate(); err != nil {
		t.Fatalf("durations at the bounds refused: %v", err)
	}
}
