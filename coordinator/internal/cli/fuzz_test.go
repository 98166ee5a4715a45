package cli

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/shoal-dev/shoal/coordinator/internal/decide"
	"github.com/shoal-dev/shoal/coordinator/internal/view"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// FuzzPolicyJSON feeds arbitrary bytes to the `policy set --file` reader. A
// policy it accepts that decide.Validate also accepts must read back the
// same after `policy get -o json` prints it.
func FuzzPolicyJSON(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parsePolicyJSON(b)
		if err != nil {
			return
		}
		if err := decide.Validate(p, 0, 100); err != nil {
			if !errors.Is(err, decide.ErrInvalidPolicy) {
				t.Fatalf("Validate error does not wrap ErrInvalidPolicy: %v", err)
			}
			return
		}
		printed, err := json.Marshal(view.PolicyOf(p))
		if err != nil {
			t.Fatalf("printing a valid policy: %v", err)
		}
		again, err := parsePolicyJSON(printed)
		if err != nil {
			t.Fatalf("printed policy refused: %v\n%s", err, printed)
		}
		if !proto.Equal(again, p) {
			t.Fatalf("round trip:\n got %v\nwant %v\nprinted %s", again, p, printed)
		}
	})
}

// FuzzParseStep feeds arbitrary text to the --step syntax. An accepted step
// has finite numbers, prints back to the same step, and a policy made of it
// either passes decide.Validate or is refused with a field error.
func FuzzParseStep(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		st, err := parseStep(s)
		if err != nil {
			return
		}
		finite := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
		if (st.Lower != nil && !finite(*st.Lower)) || (st.Upper != nil && !finite(*st.Upper)) || !finite(st.Adjustment) {
			t.Fatalf("%q: accepted a step with a non-finite number: %v", s, st)
		}
		num := func(x *float64) string {
			if x == nil {
				return ""
			}
			return strconv.FormatFloat(*x, 'g', -1, 64)
		}
		printed := strings.Join([]string{num(st.Lower), num(st.Upper), view.AdjustmentTypeWord(st.AdjustmentType), num(&st.Adjustment)}, ":")
		again, err := parseStep(printed)
		if err != nil {
			t.Fatalf("%q printed as %q, which is refused: %v", s, printed, err)
		}
		if !proto.Equal(again, st) {
			t.Fatalf("%q printed as %q reads back as %v, want %v", s, printed, again, st)
		}
		p := &shoalv1.ScalingPolicy{StepScaling: []*shoalv1.StepScaling{{Metric: "cpu", Steps: []*shoalv1.Step{st}}}}
		if err := decide.Validate(p, 0, 100); err != nil && !errors.Is(err, decide.ErrInvalidPolicy) {
			t.Fatalf("Validate error does not wrap ErrInvalidPolicy: %v", err)
		}
	})
}

// TestParsePolicyJSONRefusesTrailingData is the regression for a file with
// a second value after the policy, which was read as the first one alone.
func TestParsePolicyJSONRefusesTrailingData(t *testing.T) {
	for _, in := range []string{`{"warmup":"1s"} {"warmup":"2s"}`, `{"warmup":"1s"}}`, `{"warmup":"1s"} x`} {
		if _, err := parsePolicyJSON([]byte(in)); err == nil || !strings.Contains(err.Error(), "want one JSON object") {
			t.Errorf("%s: err = %v, want one JSON object", in, err)
		}
	}
	p, err := parsePolicyJSON([]byte("{\"warmup\":\"1s\"}\n\n"))
	if err != nil || p.GetWarmup().AsDuration() != time.Second {
		t.Fatalf("trailing white space: %v, %v", p, err)
	}
}

// TestParseStepRefusesNonFinite is the regression for --step bounds and
// adjustments of NaN or Inf, which strconv reads as numbers.
func TestParseStepRefusesNonFinite(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"NaN::change_in_capacity:1", `lower ("NaN"): not a finite number`},
		{":+Inf:change_in_capacity:1", `upper ("+Inf"): not a finite number`},
		{"::exact_capacity:inf", `adjustment ("inf"): not a finite number`},
	} {
		if _, err := parseStep(c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.in, err, c.want)
		}
	}
}

// TestParsePolicyJSONRefusesHugeSeconds is the regression for a duration
// given as a number of seconds beyond time.Duration, which converted to a
// negative duration and was refused as "must be >= 0 (got -2562047h...)".
func TestParsePolicyJSONRefusesHugeSeconds(t *testing.T) {
	for _, in := range []string{`{"warmup":1e300}`, `{"scale_in_window":-1e11}`, `{"scale_out_limit":{"max_instances":1,"period":9.3e9}}`} {
		if _, err := parsePolicyJSON([]byte(in)); err == nil || !strings.Contains(err.Error(), "out of range") {
			t.Errorf("%s: err = %v, want out of range", in, err)
		}
	}
	p, err := parsePolicyJSON([]byte(`{"warmup":9e9}`))
	if err != nil || p.GetWarmup().AsDuration() != 9e9*time.Second {
		t.Fatalf("9e9 seconds: %v, %v", p, err)
	}
}
