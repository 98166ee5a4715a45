//go:build multiprocess

package console

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/deploy/internal/sandbox"
	"github.com/shoal-dev/shoal/deploy/testkit"
)

// TestStatusWithoutLeader kills the leader of a two-node cluster (the
// survivor cannot win an election alone) and runs `status` against the
// follower: it answers from its own view, names the lost leader and exits
// 2, instead of blaming the follower for the dead leader's address.
func TestStatusWithoutLeader(t *testing.T) {
	bin := testkit.BinDir(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	opts := sandbox.DefaultOptions()
	opts.BinDir, opts.Nodes = bin, 2
	sb, err := sandbox.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := sb.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}()
	leader, err := sb.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var follower *sandbox.Node
	for _, n := range sb.Nodes() {
		if n.ID != leader.ID {
			follower = n
		}
	}
	// The follower must hold the ACL bootstrap before the leader dies, or
	// it refuses every read for that reason instead.
	err = sandbox.Poll(ctx, 20*time.Second, "the follower has the ACLs", func(ctx context.Context) error {
		_, err := sb.CLIAt(ctx, follower.RPCAddr, "--stale", "fleet", "list")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := sb.KillNode(leader); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "shoal-coordinator"), "--address", follower.RPCAddr, "--timeout", "4s", "status")
	cmd.Env = sb.CLIEnv()
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("status against %s without a leader: %v, want exit status 2; output:\n%s", follower.ID, err, out)
	}
	want := "no leader (election in progress; last leader " + leader.ID + ", unreachable)"
	for _, s := range []string{want, follower.ID, leader.ID} {
		if !strings.Contains(string(out), s) {
			t.Errorf("status output lacks %q:\n%s", s, out)
		}
	}
	if strings.Contains(string(out), "cannot reach") {
		t.Errorf("status blames the node asked:\n%s", out)
	}

	// A read that can wait retries inside --timeout and then says whom it
	// waited for, with the same exit status.
	cmd = exec.CommandContext(ctx, filepath.Join(bin, "shoal-coordinator"), "--address", follower.RPCAddr, "--timeout", "3s", "decisions", "web")
	cmd.Env = sb.CLIEnv()
	out, err = cmd.CombinedOutput()
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "waited") || !strings.Contains(string(out), leader.ID) {
		t.Errorf("decisions without a leader: %v, want exit 2 naming the wait for a leader to replace %s; output:\n%s", err, leader.ID, out)
	}

	// The console on the follower says the same: a "no leader" banner and
	// a stale badge over the members as it sees them.
	t.Run("console", func(t *testing.T) {
		needChromium(t)
		creds, _ := sb.Creds()
		b := newBrowser(t, ctx, serverSPKIs(t, sb.PKI().Dir, sb.CACert()))
		b.signIn(t, "https://"+follower.HTTPAddr+"/ui/#/cluster", creds.Token)
		b.waitJS(t, 15*time.Second, "no-leader banner and stale badge", `(() => {
			const b = document.querySelector('[data-testid="noleader-banner"]');
			return !!b && b.textContent.includes("last leader `+leader.ID+`") && !!document.querySelector('[data-testid="stale-badge"]')
				&& document.querySelectorAll('[data-testid="node-row"]').length === 2; })()`)
	})
}
