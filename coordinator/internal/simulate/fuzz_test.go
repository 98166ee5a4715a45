package simulate

import (
	"bytes"
	"errors"
	"math"
	"os"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/coordinator/internal/view"
)

// FuzzReadTrace feeds arbitrary bytes to the trace reader. An accepted trace
// keeps every documented bound, and printing it back reads the same trace.
func FuzzReadTrace(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := ReadTrace(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrBadTrace) {
				t.Fatalf("error does not wrap ErrBadTrace: %v", err)
			}
			return
		}
		if len(tr) == 0 {
			t.Fatal("accepted an empty trace")
		}
		var buf bytes.Buffer
		buf.WriteString("time,demand\n")
		for i, p := range tr {
			if p.T < 0 || p.T > MaxTraceSeconds {
				t.Fatalf("point %d: time %d out of [0, %d]", i, p.T, MaxTraceSeconds)
			}
			if !(p.Demand >= 0 && p.Demand <= MaxDemand) {
				t.Fatalf("point %d: demand %v out of [0, %g]", i, p.Demand, float64(MaxDemand))
			}
			if i > 0 && p.T <= tr[i-1].T {
				t.Fatalf("point %d: time %d does not increase after %d", i, p.T, tr[i-1].T)
			}
			buf.WriteString(strconv.FormatInt(p.T, 10) + "," + strconv.FormatFloat(p.Demand, 'g', -1, 64) + "\n")
		}
		again, err := ReadTrace(&buf)
		if err != nil {
			t.Fatalf("printed trace refused: %v\n%s", err, buf.String())
		}
		if !reflect.DeepEqual(again, tr) {
			t.Fatalf("round trip: %v, want %v", again, tr)
		}
		if span := tr[len(tr)-1].T - tr[0].T; span <= 3600 {
			if n := len(tr.Seconds()); int64(n) != span+1 {
				t.Fatalf("Seconds has %d samples, want %d", n, span+1)
			}
		}
	})
}

// FuzzRun parses the model's durations as the --launch-delay, --warmup and
// --drain flags do and runs every policy on a fuzzed trace. Whatever is
// accepted must score as counts do: nothing negative, nothing infinite.
func FuzzRun(f *testing.F) {
	pb, err := os.ReadFile(examplePolicy)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, trace []byte, launch, warmup, drain string, capacity float64) {
		cfg := DefaultConfig()
		for _, d := range []struct {
			s   string
			dst *time.Duration
		}{{launch, &cfg.LaunchDelay}, {warmup, &cfg.Warmup}, {drain, &cfg.Drain}} {
			v, err := time.ParseDuration(d.s)
			if err != nil {
				return
			}
			*d.dst = v
		}
		cfg.CapacityPerInstance = capacity
		if err := cfg.Validate(); err != nil {
			if !errors.Is(err, ErrBadConfig) {
				t.Fatalf("Validate error does not wrap ErrBadConfig: %v", err)
			}
			return
		}
		tr, err := ReadTrace(bytes.NewReader(trace))
		if err != nil || tr[len(tr)-1].T-tr[0].T > 3600 {
			return // FuzzReadTrace covers the reader; long runs only slow the search
		}
		fleet, err := view.ParseFleet(pb)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Run(tr, Setup{Fleet: fleet, Config: cfg, Compare: []string{PolicyAWS, PolicyHPA}})
		if err != nil {
			if !errors.Is(err, ErrBadTrace) && !errors.Is(err, ErrBadConfig) {
				t.Fatalf("Run error wraps neither ErrBadTrace nor ErrBadConfig: %v", err)
			}
			return
		}
		for i, d := range res.DemandInstances {
			if d < 0 {
				t.Fatalf("second %d: demand %v is %d instances", i, res.Demand[i], d)
			}
		}
		for _, s := range res.Scores {
			for name, v := range map[string]float64{"accuracy_u": s.AccuracyU, "accuracy_o": s.AccuracyO, "timeshare_u": s.TimeshareU, "timeshare_o": s.TimeshareO, "instance_hours": s.InstanceHours} {
				if !(v >= 0) || math.IsInf(v, 0) {
					t.Fatalf("%s: %s = %v", s.Policy, name, v)
				}
			}
			if s.TimeshareU+s.TimeshareO > 1+1e-9 || math.IsNaN(s.Jitter) || math.IsInf(s.Jitter, 0) || s.SLOBreachS < 0 || s.SLOBreachS > int64(len(res.Demand)) {
				t.Fatalf("%s: score out of range: %+v", s.Policy, s)
			}
		}
	})
}
