package collect

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
)

type bodyTransport struct {
	body        []byte
	contentType string
}

func (b bodyTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Header: http.Header{"Content-Type": {b.contentType}},
		Body: io.NopCloser(bytes.NewReader(b.body))}, nil
}

// FuzzScrape serves arbitrary bytes as an application's metrics endpoint,
// in the text or the protobuf exposition format, and forwards every family
// the parser finds. Whatever Scrape returns must be a value the coordinator
// accepts: a finite number >= 0.
func FuzzScrape(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte, proto bool) {
		format, ct := expfmt.NewFormat(expfmt.TypeTextPlain), "text/plain; version=0.0.4"
		if proto {
			format = expfmt.NewFormat(expfmt.TypeProtoDelim)
			ct = string(format)
		}
		fams, err := parseFamilies(bytes.NewReader(body), format)
		if err != nil {
			return
		}
		s := &Scrape{URL: "http://app/metrics", Client: &http.Client{Transport: bodyTransport{body, ct}}}
		for name := range fams {
			if customName.MatchString(name) {
				s.Forwards = append(s.Forwards, Forward{Name: name, Alias: fmt.Sprintf("fwd_%d", len(s.Forwards))})
			}
		}
		t0 := time.Unix(1_700_000_000, 0)
		for i, now := range []time.Time{t0, t0.Add(time.Second)} {
			out, err := s.Collect(now)
			// A counter has a rate from the second scrape on; the body does
			// not change, so then every forward is a value or an error.
			if i == 1 && len(out)+countErrs(err) != len(s.Forwards) {
				t.Fatalf("scrape %d: %d forwards, %d values and %v", i, len(s.Forwards), len(out), err)
			}
			for k, v := range out {
				if !(v >= 0) || math.IsInf(v, 0) {
					t.Fatalf("scrape %d: %s = %v", i, k, v)
				}
			}
		}
	})
}

func countErrs(err error) int {
	if err == nil {
		return 0
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return len(j.Unwrap())
	}
	return 1
}

// FuzzCgroup writes arbitrary cgroup v2 files and collects from them twice.
// Whatever Collect returns must be a finite number >= 0.
func FuzzCgroup(f *testing.F) {
	host := filepath.Join("testdata", "work", "t0", "proc")
	f.Fuzz(func(t *testing.T, stat0, stat1, cpuMax, memCurrent, memMax string, haveCPUMax, haveMemMax bool) {
		root := t.TempDir()
		dir := filepath.Join(root, "g")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		write := func(name, content string) {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		write("memory.current", memCurrent)
		if haveCPUMax {
			write("cpu.max", cpuMax)
		}
		if haveMemMax {
			write("memory.max", memMax)
		}
		cg := &Cgroup{FS: mustFS(t, host), Root: root, Path: "g"}
		t0 := time.Unix(1_700_000_000, 0)
		for i, stat := range []string{stat0, stat1} {
			write("cpu.stat", stat)
			out, _ := cg.Collect(t0.Add(time.Duration(i) * time.Second))
			for k, v := range out {
				if !(v >= 0) || math.IsInf(v, 0) {
					t.Fatalf("collect %d: %s = %v", i, k, v)
				}
			}
		}
	})
}

// TestScrapeRefusesNonFiniteSum is the regression for a gauge of NaN, Inf or
// below zero, which was forwarded and made the coordinator refuse the whole
// sample, cpu and mem with it.
func TestScrapeRefusesNonFiniteSum(t *testing.T) {
	body := "# TYPE a gauge\na NaN\n# TYPE b gauge\nb -1\n# TYPE c gauge\nc{x=\"1\"} 1e308\nc{x=\"2\"} 1e308\n# TYPE d gauge\nd 2\n"
	s := &Scrape{URL: "http://app/metrics", Client: &http.Client{Transport: bodyTransport{[]byte(body), "text/plain; version=0.0.4"}},
		Forwards: []Forward{{"a", "a"}, {"b", "b"}, {"c", "c"}, {"d", "d"}}}
	out, err := s.Collect(time.Unix(1_700_000_000, 0))
	if len(out) != 1 || out["d"] != 2 {
		t.Fatalf("out = %v, want only d = 2", out)
	}
	for _, name := range []string{`"a"`, `"b"`, `"c"`} {
		if err == nil || !bytes.Contains([]byte(err.Error()), []byte(`metric `+name+`: sum of its series`)) {
			t.Errorf("err = %v, want it to name metric %s", err, name)
		}
	}
}

// TestCgroupRefusesNonFiniteQuota is the regression for cpu.max "NaN 100000",
// which parsed as a quota and made cpu NaN.
func TestCgroupRefusesNonFiniteQuota(t *testing.T) {
	for _, q := range []string{"NaN 100000", "Inf 100000", "100000 Inf", "100000 NaN"} {
		path := filepath.Join(t.TempDir(), "cpu.max")
		if err := os.WriteFile(path, []byte(q), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := cpuLimit(path, mustFS(t, filepath.Join("testdata", "work", "t0", "proc"))); err == nil {
			t.Errorf("cpu.max %q accepted", q)
		}
	}
}

// TestScrapeRefusesOversizedProtobufLength is the regression for a
// delimited-protobuf answer whose length prefix claims more than the body
// holds: expfmt allocated what it claimed, and eight bytes took the agent
// down with out of memory (testdata/fuzz/FuzzScrape/26ba549fdb2ac90f).
func TestScrapeRefusesOversizedProtobufLength(t *testing.T) {
	ct := string(expfmt.NewFormat(expfmt.TypeProtoDelim))
	for name, body := range map[string][]byte{
		"a terabyte":       {0x80, 0x80, 0x80, 0x80, 0x80, 0x20, 0x0a, 0x01},
		"one byte short":   {0x05, 0x0a, 0x01, 'g', 0x18},
		"truncated varint": {0x80},
	} {
		t.Run(name, func(t *testing.T) {
			s := &Scrape{URL: "http://app/metrics", Client: &http.Client{Transport: bodyTransport{body, ct}}, Forwards: []Forward{{"g", "g"}}}
			if _, err := s.Collect(time.Unix(1_700_000_000, 0)); err == nil || !errors.Is(err, ErrScrape) || !strings.Contains(err.Error(), "protobuf") {
				t.Fatalf("err = %v, want ErrScrape about the protobuf length", err)
			}
		})
	}
}
