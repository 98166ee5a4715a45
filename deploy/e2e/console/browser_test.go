//go:build multiprocess

package console

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium is Debian's headless-capable browser.
const chromium = "/usr/bin/chromium"

// needChromium skips without Chromium, except under CI=true, where a
// missing browser is a broken setup and fails.
func needChromium(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s: %v (install Debian's chromium package; .ci/run does)", chromium, err)
		}
		t.Skipf("%s: %v", chromium, err)
	}
}

// serverSPKIs lists the base64 SHA-256 public-key hashes of the server
// certificates in dir that chain to the CA in caFile, for Chromium's
// --ignore-certificate-errors-spki-list. Chromium matches the chain a
// server presents, and a server presents its own certificate without the
// CA, so the test pins the servers the sandbox CA issued: trust in that CA
// and nothing else, checked here with Go's verifier first.
func serverSPKIs(t *testing.T, dir, caFile string) string {
	t.Helper()
	ca, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		t.Fatalf("%s: no CA certificate", caFile)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*-server-*.pem"))
	if err != nil {
		t.Fatal(err)
	}
	var hashes []string
	for _, f := range files {
		if strings.HasSuffix(f, "-key.pem") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		blk, _ := pem.Decode(b)
		if blk == nil {
			t.Fatalf("%s: no PEM block", f)
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Fatalf("%s: does not chain to the sandbox CA: %v", f, err)
		}
		sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
		hashes = append(hashes, base64.StdEncoding.EncodeToString(sum[:]))
	}
	if len(hashes) == 0 {
		t.Fatalf("%s: no server certificate", dir)
	}
	return strings.Join(hashes, ",")
}

// browser is one headless Chromium with a fresh profile, and its
// console log.
type browser struct {
	ctx    context.Context
	cancel func()
	mu     sync.Mutex
	log    []string
}

func newBrowser(t *testing.T, ctx context.Context, spki string) *browser {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoSandbox, // the tests run as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("ignore-certificate-errors-spki-list", spki),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1400),
	}
	// Not the test's context: the artefacts are taken after it ends.
	actx, acancel := chromedp.NewExecAllocator(context.WithoutCancel(ctx), opts...)
	bctx, bcancel := chromedp.NewContext(actx)
	b := &browser{ctx: bctx, cancel: func() { bcancel(); acancel() }}
	if err := chromedp.Do(bctx); err != nil {
		b.cancel()
		t.Fatalf("start %s: %v", chromium, err)
	}
	msgs := chromedp.Console(bctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			b.add(m.String())
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			b.artefacts(t)
		}
		b.cancel()
	})
	return b
}

func (b *browser) add(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.log = append(b.log, time.Now().Format("15:04:05.000 ")+s)
}

// artefacts saves a screenshot and the console log where CI keeps them
// (SHOAL_ARTIFACTS, else the temp dir), and says where.
func (b *browser) artefacts(t *testing.T) {
	dir := os.Getenv("SHOAL_ARTIFACTS")
	if dir == "" {
		dir = os.TempDir()
	}
	dir = filepath.Join(dir, "console-"+strings.ReplaceAll(t.Name(), "/", "_")+"-"+time.Now().Format("150405"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Logf("artefacts: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		_ = os.WriteFile(filepath.Join(dir, "screenshot.png"), png, 0o644)
	}
	b.mu.Lock()
	_ = os.WriteFile(filepath.Join(dir, "console.log"), []byte(strings.Join(b.log, "\n")+"\n"), 0o644)
	b.mu.Unlock()
	t.Logf("console artefacts: %s", dir)
}

// navigate opens url.
func (b *browser) navigate(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("open %s: %v", url, err)
	}
}

// evalJS evaluates js and returns its value.
func evalJS[T any](t *testing.T, b *browser, js string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("eval %s: %v", js, err)
	}
	return v
}

// waitJS polls js (a boolean expression) until it is true.
func (b *browser) waitJS(t *testing.T, within time.Duration, what, js string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js))
		cancel()
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
			text, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
			cancel()
			t.Fatalf("%s: not true within %v (%s; last error %v); the page:\n%s", what, within, js, err, text)
		}
		select {
		case <-b.ctx.Done():
			t.Fatal(b.ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// signIn opens url and enters token in the console's form, as a person
// would: into the field, then the button.
func (b *browser) signIn(t *testing.T, url, token string) {
	t.Helper()
	b.navigate(t, url)
	b.enterToken(t, token)
}

// enterToken fills in the token form the page shows.
func (b *browser) enterToken(t *testing.T, token string) {
	t.Helper()
	b.waitJS(t, 15*time.Second, "token form", `!!document.querySelector('[data-testid="token-input"]')`)
	tj, _ := json.Marshal(token)
	evalJS[bool](t, b, fmt.Sprintf(`(() => { document.querySelector('[data-testid="token-input"]').value = %s;
		document.querySelector('[data-testid="token-submit"]').click(); return true; })()`, tj))
}
