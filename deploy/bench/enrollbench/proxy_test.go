package enrollbench

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestCounterCountsByOperation: each protocol's operation is counted, and
// the request reaches the upstream with its body intact.
func TestCounterCountsByOperation(t *testing.T) {
	var bodies []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, string(b))
	}))
	defer up.Close()
	u, _ := url.Parse(up.URL)
	c := NewCounter(u)
	px := httptest.NewServer(c)
	defer px.Close()
	form := "Action=DescribeAutoScalingInstances&Version=2011-01-01&InstanceIds.member.1=i-1"
	for range 2 {
		if _, err := http.Post(px.URL+"/", "application/x-www-form-urlencoded", strings.NewReader(form)); err != nil {
			t.Fatal(err)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, px.URL+"/", strings.NewReader("{}"))
	req.Header.Set("X-Amz-Target", "GraniteServiceVersion20100801.PutMetricData")
	if _, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Post(px.URL+"/service/GraniteServiceVersion20100801/operation/GetMetricData", "application/cbor", nil); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(px.URL + CountsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got map[string]uint64
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"DescribeAutoScalingInstances": 2, "PutMetricData": 1, "GetMetricData": 1}
	if len(got) != len(want) {
		t.Errorf("counts %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("counts %v, want %v", got, want)
		}
	}
	if len(bodies) != 4 || bodies[0] != form {
		t.Errorf("upstream got %q", bodies)
	}
}

func TestQuantile(t *testing.T) {
	cases := []struct {
		in   []int
		q    float64
		want int
	}{{nil, 0.5, 0}, {[]int{3, 1, 2}, 0.5, 2}, {[]int{5, 4, 3, 2, 1, 10, 9, 8, 7, 6}, 0.99, 10}, {[]int{1}, 0.99, 1}}
	for _, tc := range cases {
		var in []timeDur
		for _, v := range tc.in {
			in = append(in, timeDur(v))
		}
		if got := quantile(in, tc.q); int(got) != tc.want {
			t.Errorf("quantile(%v, %v) = %v, want %v", tc.in, tc.q, got, tc.want)
		}
	}
}

type timeDur = time.Duration
