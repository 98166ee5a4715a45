package enrollbench

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
)

// CountsPath is where the proxy serves its counts as JSON
// ({"DescribeAutoScalingInstances": 3, ...}); no AWS API uses the path.
const CountsPath = "/_enrollbench/counts"

// maxBody bounds the request body the proxy reads to find the action.
const maxBody = 16 << 20

// Counter is a reverse proxy in front of the local cloud that counts the
// AWS API calls going through it by operation. The coordinators'
// AWS_ENDPOINT_URL points at it, so the benchmark counts exactly the calls
// they make, without asking the coordinator or the local cloud for it.
type Counter struct {
	proxy *httputil.ReverseProxy
	mu    sync.Mutex
	calls map[string]uint64
}

// NewCounter proxies to upstream (the local cloud's URL).
func NewCounter(upstream *url.URL) *Counter {
	return &Counter{proxy: httputil.NewSingleHostReverseProxy(upstream), calls: map[string]uint64{}}
}

// Counts is a copy of the calls so far by operation.
func (c *Counter) Counts() map[string]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]uint64, len(c.calls))
	for k, v := range c.calls {
		out[k] = v
	}
	return out
}

func (c *Counter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == CountsPath {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(c.Counts())
		return
	}
	op, body, err := operation(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	r.ContentLength = int64(len(body))
	c.mu.Lock()
	c.calls[op]++
	c.mu.Unlock()
	c.proxy.ServeHTTP(w, r)
}

// operation names the AWS operation of r: the awsQuery/ec2query Action, the
// JSON X-Amz-Target, or the RPC v2 path's last element; "other" else. It
// returns the body it read.
func operation(r *http.Request) (string, []byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		return "", nil, err
	}
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		return t[strings.LastIndex(t, ".")+1:], body, nil
	}
	if strings.Contains(r.URL.Path, "/operation/") {
		return r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:], body, nil
	}
	if strings.HasPrefix(r.URL.Path, "/_localcloud/") {
		return "hook", body, nil
	}
	if a := r.URL.Query().Get("Action"); a != "" {
		return a, body, nil
	}
	if form, err := url.ParseQuery(string(body)); err == nil && form.Get("Action") != "" {
		return form.Get("Action"), body, nil
	}
	return "other", body, nil
}
