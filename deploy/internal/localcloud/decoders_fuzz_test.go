package localcloud

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/smithy-go/encoding/cbor"
)

// These targets drive ServeHTTP with arbitrary requests of each protocol the
// local cloud decodes: CloudWatch's JSON 1.0, awsQuery and RPC v2 CBOR, and
// the Auto Scaling (awsQuery) and EC2 (ec2query) forms. Whatever arrives, the
// answer is a client error or a success in the protocol's own well-formed
// encoding; a 5xx means a decoder let through something an operation could
// not handle.

// newFuzzServer is a cloud that never runs its loops and whose shell does
// not exist, so nothing a fuzzed request does can start a process.
func newFuzzServer(t *testing.T) *Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Addr, cfg.InstanceIPPrefix, cfg.Shell, cfg.Clock = "127.0.0.1:0", "127.0.79", "/nonexistent/localcloud-fuzz-sh", fixedNow(cwTestNow)
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func checkXML(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	if rec.Code >= 500 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	dec := xml.NewDecoder(bytes.NewReader(rec.Body.Bytes()))
	for {
		if _, err := dec.Token(); err == io.EOF {
			return
		} else if err != nil {
			t.Fatalf("status %d: answer is not XML: %v\n%s", rec.Code, err, rec.Body)
		}
	}
}

// launches reports forms that would start an instance: its metadata
// service listens on a loopback address, which a fuzz run must not do.
func launches(form string) bool {
	v, _ := url.ParseQuery(form)
	return strings.Contains(strings.ToLower(form), "runinstances") || v.Get("Action") == "RunInstances"
}

func FuzzCloudWatchJSON(f *testing.F) {
	f.Fuzz(func(t *testing.T, op string, body []byte) {
		req := jsonRequest("", string(body))
		req.Header.Set("X-Amz-Target", cwTargetPrefix+op)
		rec := serve(newFuzzServer(t), req)
		if rec.Code >= 500 {
			t.Fatalf("%s: status %d: %s", op, rec.Code, rec.Body)
		}
		if rec.Body.Len() > 0 && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s: status %d: answer is not JSON: %s", op, rec.Code, rec.Body)
		}
	})
}

func FuzzCloudWatchQuery(f *testing.F) {
	f.Fuzz(func(t *testing.T, form string) {
		checkXML(t, serve(newFuzzServer(t), queryRequest(form)))
	})
}

func FuzzCloudWatchCBOR(f *testing.F) {
	f.Fuzz(func(t *testing.T, op string, body []byte) {
		if strings.ContainsAny(op, "/?#%") {
			return // not one path segment
		}
		req := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		req.URL.Path = cloudwatchPrefix + op
		req.Header.Set("Smithy-Protocol", "rpc-v2-cbor")
		req.Header.Set("Content-Type", "application/cbor")
		req.Header.Set("Authorization", sigv4("monitoring"))
		rec := serve(newFuzzServer(t), req)
		if rec.Code >= 500 {
			t.Fatalf("%s: status %d: %x", op, rec.Code, rec.Body.Bytes())
		}
		if rec.Body.Len() > 0 {
			if _, err := cbor.Decode(rec.Body.Bytes()); err != nil {
				t.Fatalf("%s: status %d: answer is not CBOR: %v", op, rec.Code, err)
			}
		}
	})
}

func formRequest(service, form string) *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	req.Header.Set("Authorization", sigv4(service))
	return req
}

func FuzzAutoScalingQuery(f *testing.F) {
	f.Fuzz(func(t *testing.T, form string) {
		if launches(form) {
			return
		}
		checkXML(t, serve(newFuzzServer(t), formRequest("autoscaling", form)))
	})
}

func FuzzEC2Query(f *testing.F) {
	f.Fuzz(func(t *testing.T, form string) {
		if launches(form) {
			return
		}
		checkXML(t, serve(newFuzzServer(t), formRequest("ec2", form)))
	})
}
