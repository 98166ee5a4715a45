//go:build multiprocess

package console

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/deploy/internal/sandbox"
	"github.com/shoal-dev/shoal/deploy/testkit"
)

// evilReason is a scale reason that would run as script if the page put
// outside text in as markup.
const evilReason = `<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">`

type newToken struct {
	Secret string `json:"secret"`
}

func token(t *testing.T, ctx context.Context, sb *sandbox.Sandbox, name, policy string) string {
	t.Helper()
	var tok newToken
	if err := sb.CLIJSON(ctx, &tok, "acl", "token", "create", "--name", name, "--policy", policy); err != nil {
		t.Fatal(err)
	}
	if tok.Secret == "" {
		t.Fatalf("acl token create %s: no secret", name)
	}
	return tok.Secret
}

// TestConsole opens the console of the leader in headless Chromium and
// checks what the page shows and who may do what.
func TestConsole(t *testing.T) {
	needChromium(t)
	bin := testkit.BinDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 85*time.Second)
	defer cancel()
	opts := sandbox.DefaultOptions()
	opts.BinDir = bin
	opts.BootDelay, opts.DrainTimeout, opts.EvalInterval = 500*time.Millisecond, 3*time.Second, 500*time.Millisecond
	opts.TerminateGrace = time.Second
	sb, err := sandbox.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := sb.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	if _, err := sb.RunGolden(ctx, 50); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.Bootstrap(ctx, sandbox.Bootstrap{Min: 1, Max: 4, ScaleInWindow: 10 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	if _, err := sb.WaitInService(ctx, "web", 1, 45*time.Second); err != nil {
		t.Fatal(err)
	}
	// Paused, only the test's scale commands move the fleet (a manual
	// scale still acts on a paused fleet).
	if _, err := sb.CLI(ctx, "pause", "web"); err != nil {
		t.Fatal(err)
	}
	readTok, operTok := token(t, ctx, sb, "viewer", "read"), token(t, ctx, sb, "oncall", "operate")
	leader, err := sb.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	base := "https://" + leader.HTTPAddr + "/ui/"

	// Without a token the API gives nothing, over HTTPS that asks for no
	// client certificate; plain HTTP still serves scrapers.
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(sb.CACert())
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(ca)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}}}
	for path, want := range map[string]int{"ui/api/v1/fleets/web/events": 401, "ui/api/v1/whoami": 401, "ui/": 200} {
		resp, err := hc.Get(base[:len(base)-3] + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") {
			t.Errorf("GET /%s without a token: %d, CSP %q; want %d and the console's CSP", path, resp.StatusCode, resp.Header.Get("Content-Security-Policy"), want)
		}
	}
	if resp, err := http.Get("http://" + leader.HTTPAddr + "/metrics"); err != nil || resp.StatusCode != 200 {
		t.Errorf("plain /metrics: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	b := newBrowser(t, ctx, serverSPKIs(t, sb.PKI().Dir, sb.CACert()))
	b.navigate(t, base+"#/fleets/web")
	b.waitJS(t, 15*time.Second, "token form without a token", `!!document.querySelector('[data-testid="token-form"]')`)
	if shown := evalJS[int](t, b, `document.querySelectorAll('[data-testid="fleet-min"],[data-testid="instance-row"],[data-testid="chart"]').length`); shown != 0 {
		t.Errorf("without a token the page shows %d fleet elements", shown)
	}

	// A read token: the fleet's bounds, a chart, no write buttons.
	b.signIn(t, base+"#/fleets/web", readTok)
	b.waitJS(t, 15*time.Second, "fleet bounds", `(() => { const q = (id) => (document.querySelector('[data-testid="'+id+'"]')||{}).textContent;
		return q("fleet-min") === "1" && q("fleet-desired") === "1" && q("fleet-max") === "4"; })()`)
	if writeButtons := evalJS[int](t, b, `document.querySelectorAll('[data-testid="btn-scale"],[data-testid="btn-pause"],[data-testid="btn-resume"],[data-testid="actions"]').length`); writeButtons != 0 {
		t.Errorf("a read token sees %d write buttons", writeButtons)
	}
	b.waitJS(t, 10*time.Second, "chart points", `+document.querySelector('[data-testid="chart"]').dataset.points >= 2`)
	points0 := evalJS[int](t, b, `+document.querySelector('[data-testid="chart"]').dataset.points`)

	// scale: the chart gains points and a decision marker, and the
	// reason, script and all, shows as text.
	if _, err := sb.CLI(ctx, "scale", "web", "--desired", "2", "--reason", evilReason); err != nil {
		t.Fatal(err)
	}
	b.waitJS(t, 15*time.Second, "decision marker", `document.querySelectorAll('[data-testid="decision-marker"]').length >= 1`)
	b.waitJS(t, 5*time.Second, "chart grows", fmt.Sprintf(`+document.querySelector('[data-testid="chart"]').dataset.points > %d`, points0))
	reasonJS, _ := json.Marshal(evilReason)
	b.waitJS(t, 5*time.Second, "reason as text", fmt.Sprintf(`[...document.querySelectorAll('[data-testid="decision-reason"]')].some((e) => e.textContent === %s)`, reasonJS))
	pwned := evalJS[int](t, b, `window.__pwned === undefined ? 0 : 1`)
	injected := evalJS[int](t, b, `document.querySelectorAll('#main script, #main img').length`)
	if pwned != 0 || injected != 0 {
		t.Errorf("the reason ran as markup: __pwned %d, script/img elements %d", pwned, injected)
	}

	// Scale-in: the victim shows as draining, then leaves the table.
	b.waitJS(t, 40*time.Second, "two in service", `document.querySelectorAll('[data-testid="instance-row"][data-state="in_service"]').length === 2`)
	if _, err := sb.CLI(ctx, "scale", "web", "--desired", "1", "--reason", "console test scale-in"); err != nil {
		t.Fatal(err)
	}
	b.waitJS(t, 20*time.Second, "a draining row", `!!(window.__drain = (document.querySelector('[data-testid="instance-row"][data-state="draining"]')||{dataset:{}}).dataset.instance)`)
	b.waitJS(t, 30*time.Second, "the drained instance leaves", `![...document.querySelectorAll('[data-testid="instance-row"]')].some((r) => r.dataset.instance === window.__drain)`)

	// An operate token sees the write buttons.
	evalJS[bool](t, b, `(document.querySelector('[data-testid="logout"]').click(), sessionStorage.length === 0)`)
	b.enterToken(t, operTok)
	b.waitJS(t, 15*time.Second, "write buttons for operate", `!!document.querySelector('[data-testid="btn-scale"]') && !!document.querySelector('[data-testid="btn-resume"]')`)
	if evalJS[bool](t, b, fmt.Sprintf(`location.href.includes(%q)`, operTok)) {
		t.Error("the token is in the page's URL")
	}
}
