package publish

import (
	"compress/gzip"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/smithy-go/encoding/cbor"

	awscloud "github.com/shoal-dev/shoal/coordinator/internal/cloud/aws"
)

// cborServer is a fault-injecting CloudWatch endpoint speaking Smithy RPC v2
// CBOR, the SDK's default CloudWatch protocol. It records every PutMetricData
// request (decoded) and answers with what fail says: a non-empty error code
// becomes the real error shape (status, __type, x-amzn-query-error).
type cborServer struct {
	mu   sync.Mutex
	puts []putRequest
	ops  []string
	fail func(n int) (status int, code string)
	// describeAlarms, when set, is DescribeAlarms' answer.
	describeAlarms cbor.Value
}

type putRequest struct {
	namespace string
	datums    []cbor.Map
	bytes     int
}

func (s *cborServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The SDK gzips PutMetricData bodies over 10 KiB (the operation's
	// requestCompression trait), as real CloudWatch accepts.
	var rd io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		rd = zr
	}
	body, _ := io.ReadAll(rd)
	op := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
	s.mu.Lock()
	s.ops = append(s.ops, op)
	n := len(s.ops)
	s.mu.Unlock()
	w.Header().Set("Smithy-Protocol", "rpc-v2-cbor")
	w.Header().Set("Content-Type", "application/cbor")
	if s.fail != nil {
		if status, code := s.fail(n); code != "" {
			w.Header().Set("X-Amzn-Query-Error", code+";Sender")
			w.WriteHeader(status)
			w.Write(cbor.Encode(cbor.Map{"__type": cbor.String("com.amazonaws.cloudwatch#" + code), "message": cbor.String("Rate exceeded")}))
			return
		}
	}
	if op == "PutMetricData" {
		v, err := cbor.Decode(body)
		if err != nil {
			w.WriteHeader(400)
			w.Write(cbor.Encode(cbor.Map{"__type": cbor.String("SerializationException"), "message": cbor.String(err.Error())}))
			return
		}
		m := v.(cbor.Map)
		pr := putRequest{namespace: string(m["Namespace"].(cbor.String)), bytes: len(body)}
		for _, d := range m["MetricData"].(cbor.List) {
			pr.datums = append(pr.datums, d.(cbor.Map))
		}
		s.mu.Lock()
		s.puts = append(s.puts, pr)
		s.mu.Unlock()
	}
	w.WriteHeader(200)
	if op == "DescribeAlarms" && s.describeAlarms != nil {
		w.Write(cbor.Encode(s.describeAlarms))
		return
	}
	w.Write(cbor.Encode(cbor.Map{}))
}

func (s *cborServer) operations() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ops...)
}

func (s *cborServer) putRequests() []putRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]putRequest(nil), s.puts...)
}

func (s *cborServer) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.ops)
}

func setCredentials(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_PROFILE", "")
}

// newCloudWatch returns a real SDK client on the shared Shoal AWS config,
// pointed at endpoint, with short SDK backoffs.
func newCloudWatch(t *testing.T, endpoint string, attempts int) *cloudwatch.Client {
	t.Helper()
	setCredentials(t)
	c := awscloud.DefaultConfig()
	c.Region = "us-east-1"
	c.Endpoint = endpoint
	c.MaxAttempts = attempts
	c.MaxBackoff = 10 * time.Millisecond
	c.BaseDelay = 2 * time.Millisecond
	c.RatePerSecond = 10000
	c.Burst = 10000
	cfg, err := awscloud.LoadConfig(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	return cloudwatch.NewFromConfig(cfg)
}

func startCBOR(t *testing.T, s *cborServer, attempts int) *cloudwatch.Client {
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return newCloudWatch(t, srv.URL, attempts)
}

// eventually checks cond every 5 ms until it holds, for up to within. It
// polls because the SDK talks to cborServer, or to a local cloud process,
// over loopback TCP, which no synctest bubble can hold, and because what
// the callers wait for (a request sent, the queue drained, a commit tried)
// has no signal of its own.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s", within, what)
		case <-tick.C:
		}
	}
}
