//go:build multiprocess

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func binary(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SHOAL_BIN")
	if dir == "" {
		t.Skip("SHOAL_BIN is not set: run `make test-e2e` (it builds bin/ and sets it)")
	}
	p, err := filepath.Abs(filepath.Join(dir, "shoal-lb"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("shoal-lb binary: %v", err)
	}
	return p
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

type proc struct {
	cmd *exec.Cmd
	out *bytes.Buffer
}

// start runs the binary in its own process group, killed at test end.
func start(t *testing.T, bin string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, out: &out}
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *proc) kill() {
	if p.cmd.Process != nil {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		p.cmd.Wait()
	}
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not start listening", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// loadtest runs `shoal-lb loadtest` to completion (bounded by its
// --duration and a hard timeout) and returns its output.
func loadtest(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"loadtest"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("loadtest: %v\n%s", err, out)
	}
	return string(out)
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

func startBackends(t *testing.T, bin string, n int) (httpAddrs, grpcAddrs []string, procs []*proc) {
	t.Helper()
	for i := range n {
		h, g := freeAddr(t), freeAddr(t)
		procs = append(procs, start(t, filepath.Join(filepath.Dir(bin), "bench-backend"), "--http", h, "--grpc", g, "--name", fmt.Sprintf("be%d", i)))
		waitListening(t, h)
		waitListening(t, g)
		httpAddrs, grpcAddrs = append(httpAddrs, h), append(grpcAddrs, g)
	}
	return httpAddrs, grpcAddrs, procs
}

func TestKilledBackendProcessCostsNoFailures(t *testing.T) {
	bin := binary(t)
	httpAddrs, _, backends := startBackends(t, bin, 3)
	lb, admin := freeAddr(t), freeAddr(t)
	start(t, bin, "serve", "--listen", lb, "--admin-addr", admin, "--fleet", "web",
		"--backends", strings.Join(httpAddrs, ","), "--health-interval", "500ms", "--health-timeout", "250ms", "--log-level", "warn")
	waitListening(t, lb)
	waitListening(t, admin)

	done := make(chan string, 1)
	go func() {
		done <- loadtest(t, bin, "--target", "http://"+lb+"/", "--rate", "400", "--duration", "4s", "--connections", "8", "--quiet")
	}()
	time.Sleep(1500 * time.Millisecond)
	backends[1].kill() // SIGKILL: no goodbye, connections reset
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
	bin := binary(t)
	_, grpcAddrs, _ := startBackends(t, bin, 3)
	lb := freeAddr(t)
	start(t, bin, "serve", "--listen", lb, "--fleet", "grpc", "--backends", strings.Join(grpcAddrs, ","), "--health-grpc", "--log-level", "warn")
	waitListening(t, lb)
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
