//go:build multiprocess

package console

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/shoal-dev/shoal/deploy/internal/demo"
	"github.com/shoal-dev/shoal/deploy/internal/sandbox"
	"github.com/shoal-dev/shoal/deploy/testkit"
)

// TestDemoSpikeScreenshot runs `make demo`'s load profile and takes the
// README's screenshot of the fleet detail page near the end of the spike,
// with the browser the tests use. It runs only when SHOAL_CONSOLE_SCREENSHOT
// names the PNG to write (`make ui-screenshot`).
func TestDemoSpikeScreenshot(t *testing.T) {
	outFile := os.Getenv("SHOAL_CONSOLE_SCREENSHOT")
	if outFile == "" {
		t.Skip("takes the README screenshot; make ui-screenshot sets SHOAL_CONSOLE_SCREENSHOT")
	}
	needChromium(t)
	bin := testkit.BinDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cfg := demo.DefaultConfig()
	cfg.BinDir, cfg.ReportDir, cfg.Out = bin, t.TempDir(), io.Discard
	loading := make(chan *sandbox.Sandbox, 1)
	cfg.OnLoad = func(_ context.Context, sb *sandbox.Sandbox) { loading <- sb }
	done := make(chan error, 1)
	go func() {
		_, err := demo.Run(ctx, cfg, nil)
		done <- err
	}()
	var sb *sandbox.Sandbox
	select {
	case sb = <-loading:
	case err := <-done:
		t.Fatalf("demo ended before its load: %v", err)
	}
	loadStart := time.Now()
	readTok := token(t, ctx, sb, "screenshot", "read")
	n := sb.Nodes()[0]
	b := newBrowser(t, ctx, serverSPKIs(t, sb.PKI().Dir, sb.CACert()))
	b.signIn(t, "https://"+n.HTTPAddr+"/ui/#/fleets/"+demo.Fleet, readTok)
	b.waitJS(t, 20*time.Second, "fleet page", `!!document.querySelector('[data-testid="chart"]')`)
	// The profile's clock, not a wait for a condition: the picture is of
	// the spike's end, when the high alarm has fired.
	at := loadStart.Add(cfg.Baseline + cfg.Spike*19/20)
	select {
	case <-time.After(time.Until(at)):
	case err := <-done:
		t.Fatalf("demo ended early: %v", err)
	}
	sctx, scancel := context.WithTimeout(b.ctx, 20*time.Second)
	png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
	scancel()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(outFile), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(outFile, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s (%d bytes)", outFile, len(png))
	cancel()
	<-done
}
