//go:build multiprocess

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/deploy/testkit"
)

// loadtest runs `shoal-lb loadtest` to completion (bounded by its
// --duration and a hard timeout) and returns its output.
func loadtest(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := testkit.Run(60*time.Second, bin, append([]string{"loadtest"}, args...))
	if err != nil {
		t.Fatalf("loadtest: %v\n%s", err, out)
	}
	return out
}

var summaryRe = regexp.MustCompile(`summary requests=(\d+) ok=(\d+) errors=(\d+)`)

func summary(t *testing.T, out string) (requests, errors int, instances map[string]int) {
	t.Helper()
	m := summaryRe.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no summary in loadtest output:\n%s", out)
	}
	requests, _ = strconv.Atoi(m[1])
	errors, _ = strconv.Atoi(m[3])
	instances = map[string]int{}
	for _, line := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(line, "instances "); ok {
			for _, kv := range strings.Split(rest, ";") {
				k, v, _ := strings.Cut(kv, "=")
				instances[k], _ = strconv.Atoi(v)
			}
		}
	}
	return requests, errors, instances
}

func startBackends(t *testing.T, bin string, n int) (httpAddrs, grpcAddrs []string, procs []*testkit.Proc) {
	t.Helper()
	for i := range n {
		h, g := testkit.FreeAddr(t), testkit.FreeAddr(t)
		procs = append(procs, testkit.Start(t, testkit.Binary(t, "bench-backend"), []string{"--http", h, "--grpc", g, "--name", fmt.Sprintf("be%d", i)}, testkit.Options{Name: fmt.Sprintf("be%d", i)}))
		testkit.WaitTCP(t, h, 10*time.Second)
		testkit.WaitTCP(t, g, 10*time.Second)
		httpAddrs, grpcAddrs = append(httpAddrs, h), append(grpcAddrs, g)
	}
	return httpAddrs, grpcAddrs, procs
}

func TestKilledBackendProcessCostsNoFailures(t *testing.T) {
	bin := testkit.Binary(t, "shoal-lb")
	httpAddrs, _, backends := startBackends(t, bin, 3)
	lb, admin := testkit.FreeAddr(t), testkit.FreeAddr(t)
	testkit.Start(t, bin, []string{"serve", "--listen", lb, "--admin-addr", admin, "--fleet", "web",
		"--backends", strings.Join(httpAddrs, ","), "--health-interval", "500ms", "--health-timeout", "250ms", "--log-level", "warn"}, testkit.Options{Name: "lb"})
	testkit.WaitTCP(t, lb, 10*time.Second)
	testkit.WaitTCP(t, admin, 10*time.Second)

	done := make(chan string, 1)
	go func() {
		done <- loadtest(t, bin, "--target", "http://"+lb+"/", "--rate", "400", "--duration", "4s", "--connections", "8", "--quiet")
	}()
	time.Sleep(1500 * time.Millisecond)
	if err := backends[1].Stop(0); err != nil { // SIGKILL: no goodbye, connections reset
		t.Error(err)
	}
	out := <-done
	requests, errs, inst := summary(t, out)
	if errs != 0 {
		t.Fatalf("%d of %d requests failed after a backend was killed:\n%s", errs, requests, out)
	}
	if requests < 1000 || inst["be0"] == 0 || inst["be2"] == 0 || inst["be1"] == 0 {
		t.Fatalf("load did not exercise all backends: %d requests, %v", requests, inst)
	}
	resp, err := http.Get("http://" + admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`shoal_lb_backend_requests_total{backend="` + httpAddrs[0], "shoal_lb_backend_latency_seconds_bucket", "shoal_lb_retries_total", "shoal_lb_retry_budget_exhausted_total", `shoal_lb_backend_healthy{backend="` + httpAddrs[1] + `",fleet="web",instance="` + httpAddrs[1] + `",state="active"} 0`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestGRPCOneConnectionSpreadsAcrossBackendProcesses(t *testing.T) {
	bin := testkit.Binary(t, "shoal-lb")
	_, grpcAddrs, _ := startBackends(t, bin, 3)
	lb := testkit.FreeAddr(t)
	testkit.Start(t, bin, []string{"serve", "--listen", lb, "--fleet", "grpc", "--backends", strings.Join(grpcAddrs, ","), "--health-grpc", "--log-level", "warn"}, testkit.Options{Name: "lb"})
	testkit.WaitTCP(t, lb, 10*time.Second)
	out := loadtest(t, bin, "--grpc", "--target", lb, "--connections", "1", "--streams", "64", "--duration", "3s", "--quiet")
	requests, errs, inst := summary(t, out)
	if errs != 0 || requests < 1000 {
		t.Fatalf("%d errors in %d calls:\n%s", errs, requests, out)
	}
	for i := range 3 {
		name := fmt.Sprintf("be%d", i)
		want := float64(requests) / 3
		if got := float64(inst[name]); got < want*0.9 || got > want*1.1 {
			t.Errorf("%s answered %.0f of %d calls on one connection, want %.0f ±10%%: %v", name, got, requests, want, inst)
		}
	}
}
