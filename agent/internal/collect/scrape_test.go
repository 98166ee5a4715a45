package collect

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseForward(t *testing.T) {
	cases := []struct {
		in      string
		want    Forward
		wantErr string
	}{
		{"queue_depth", Forward{"queue_depth", "queue_depth"}, ""},
		{"app_inflight_requests=inflight", Forward{"app_inflight_requests", "inflight"}, ""},
		{"x=cpu", Forward{}, "built-in"},
		{"bad-name", Forward{}, "not a metric name"},
		{"ok=", Forward{}, "alias"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseForward(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrConfig) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseForward = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestScrape(t *testing.T) {
	var requests atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := requests.Add(1)
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		body := `# TYPE queue_depth gauge
queue_depth{queue="a"} 3
queue_depth{queue="b"} 4
# TYPE app_requests_total counter
app_requests_total{code="200"} ` + map[bool]string{true: "100", false: "150"}[n == 1] + `
app_requests_total{code="500"} 10
# TYPE latency_seconds histogram
latency_seconds_bucket{le="+Inf"} 1
latency_seconds_sum 1
latency_seconds_count 1
`
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()

	s := &Scrape{URL: srv.URL, Forwards: []Forward{
		{"queue_depth", "queue"}, {"app_requests_total", "rps"},
	}}
	t0 := time.Unix(1700000000, 0)
	first, err := s.Collect(t0)
	if err != nil {
		t.Fatal(err)
	}
	if first["queue"] != 7 {
		t.Errorf("queue = %v, want the sum 7", first["queue"])
	}
	if _, ok := first["rps"]; ok {
		t.Errorf("counter rate reported on the first scrape: %v", first)
	}
	second, err := s.Collect(t0.Add(2 * time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if second["rps"] != 25 {
		t.Errorf("rps = %v, want (160-110)/2 = 25", second["rps"])
	}

	t.Run("missing and unsupported families are named", func(t *testing.T) {
		s := &Scrape{URL: srv.URL, Forwards: []Forward{{"nope", "nope"}, {"latency_seconds", "lat"}, {"queue_depth", "q"}}}
		got, err := s.Collect(t0)
		if err == nil || !strings.Contains(err.Error(), `"nope" not found`) || !strings.Contains(err.Error(), "HISTOGRAM") {
			t.Fatalf("err = %v", err)
		}
		if got["q"] != 7 {
			t.Errorf("the family found was not returned: %v", got)
		}
	})
	t.Run("endpoint down", func(t *testing.T) {
		s := &Scrape{URL: "http://127.0.0.1:1/metrics", Forwards: []Forward{{"a", "a"}}, Timeout: time.Second}
		if _, err := s.Collect(t0); !errors.Is(err, ErrScrape) {
			t.Fatalf("err = %v, want ErrScrape", err)
		}
	})
}
