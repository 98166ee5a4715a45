package cloudtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/deploy/testkit"
)

// The local cloud binary is built at most once per test binary, into a
// directory RunMain removes.
var (
	buildOnce sync.Once
	buildDir  string
	buildPath string
	buildErr  error
)

// RunMain runs a package's tests and then removes the local cloud binary
// LocalCloud may have built. Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(cloudtest.RunMain(m)) }
func RunMain(m *testing.M) int {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	return code
}

// localCloudBinary finds shoal-localcloud: $SHOAL_BIN/shoal-localcloud when
// it exists (found as every multi-process test finds binaries), else a
// fresh `go build` of ./deploy/cmd/shoal-localcloud from the module root.
func localCloudBinary() (string, error) {
	if p, err := testkit.LookBinary("shoal-localcloud"); err == nil {
		return p, nil
	}
	buildOnce.Do(func() {
		out, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			buildErr = fmt.Errorf("go env GOMOD: %w", err)
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(out)))
		if _, err := os.Stat(filepath.Join(root, "deploy", "cmd", "shoal-localcloud")); err != nil {
			buildErr = fmt.Errorf("deploy/cmd/shoal-localcloud is not in this tree yet: %w", err)
			return
		}
		buildDir, buildErr = os.MkdirTemp("", "shoal-localcloud-test-")
		if buildErr != nil {
			return
		}
		buildPath = filepath.Join(buildDir, "shoal-localcloud")
		cmd := exec.Command("go", "build", "-o", buildPath, "./deploy/cmd/shoal-localcloud")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build shoal-localcloud: %w\n%s", err, out)
		}
	})
	return buildPath, buildErr
}

// LocalCloud is a running shoal-localcloud process.
type LocalCloud struct {
	// URL is the AWS endpoint (and the /_localcloud/ hooks' base).
	URL string
	t   testing.TB
}

// StartLocalCloud starts shoal-localcloud on a free 127.0.0.1 port with short
// boot and termination delays, waits until it answers, and kills its whole
// process group when the test ends. It skips the test when the binary is not
// available. extra flags are appended to the defaults.
func StartLocalCloud(t testing.TB, extra ...string) *LocalCloud {
	t.Helper()
	bin, err := localCloudBinary()
	if err != nil {
		t.Skipf("shoal-localcloud not available: %v", err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		lc, err := startOnce(t, bin, extra)
		if err == nil {
			return lc
		}
		lastErr = err // most likely the free port was taken meanwhile
	}
	t.Fatalf("start shoal-localcloud: %v", lastErr)
	return nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func startOnce(t testing.TB, bin string, extra []string) (*LocalCloud, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	// A prefix of its own, so local clouds of packages tested in parallel
	// never hand out the same instance addresses.
	prefix := fmt.Sprintf("127.%d.%d", 100+rand.IntN(150), 1+rand.IntN(250))
	args := append([]string{"serve", "--addr", addr, "--boot-delay", "200ms", "--terminate-grace", "500ms",
		"--launch-retry", "500ms", "--instance-ip-prefix", prefix, "--log-level", "warn"}, extra...)
	var logs bytes.Buffer
	cmd := exec.Command(bin, args...)
	cmd.Stdout = &syncWriter{w: &logs}
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	}
	lc := &LocalCloud{URL: "http://" + addr, t: t}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(lc.URL + "/_localcloud/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			return nil, fmt.Errorf("shoal-localcloud exited: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("shoal-localcloud did not answer on %s within 15s\n%s", addr, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("shoal-localcloud output:\n%s", logs.String())
		}
	})
	return lc, nil
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// Env points the AWS SDK at the local cloud for the rest of the test:
// AWS_ENDPOINT_URL, a region and dummy credentials, no IMDS.
func (lc *LocalCloud) Env(t *testing.T) {
	t.Setenv("AWS_ENDPOINT_URL", lc.URL)
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDLOCALCLOUDTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "localcloud")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", "/dev/null")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
	t.Setenv("AWS_PROFILE", "")
}

// Hook calls a /_localcloud/ test hook and returns its JSON body; a status
// other than 200 fails the test.
func (lc *LocalCloud) Hook(method, path string) []byte {
	lc.t.Helper()
	req, err := http.NewRequest(method, lc.URL+"/_localcloud/"+strings.TrimPrefix(path, "/"), nil)
	if err != nil {
		lc.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		lc.t.Fatalf("hook %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		lc.t.Fatalf("hook %s %s: %s: %s", method, path, resp.Status, body)
	}
	return body
}

// Now returns the local cloud's clock.
func (lc *LocalCloud) Now() time.Time {
	lc.t.Helper()
	var out struct{ Now time.Time }
	if err := json.Unmarshal(lc.Hook(http.MethodGet, "clock"), &out); err != nil {
		lc.t.Fatal(err)
	}
	return out.Now
}

// Advance moves the local cloud's clock forward by d; alarms are evaluated
// and lifecycle timeouts act as if that much time had passed.
func (lc *LocalCloud) Advance(d time.Duration) time.Time {
	lc.t.Helper()
	var out struct{ Now time.Time }
	if err := json.Unmarshal(lc.Hook(http.MethodPost, "clock?advance="+d.String()), &out); err != nil {
		lc.t.Fatal(err)
	}
	return out.Now
}

// Set moves the local cloud's clock forward to t (it never runs back).
func (lc *LocalCloud) Set(t time.Time) time.Time {
	lc.t.Helper()
	var out struct{ Now time.Time }
	if err := json.Unmarshal(lc.Hook(http.MethodPost, "clock?set="+url.QueryEscape(t.UTC().Format(time.RFC3339Nano))), &out); err != nil {
		lc.t.Fatal(err)
	}
	return out.Now
}
