package aws

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
	"github.com/shoal-dev/shoal/coordinator/internal/cloud/cloudtest"
)

// auditLine is the part of a local cloud audit record this test reads.
type auditLine struct {
	Op      string `json:"op"`
	Caller  string `json:"caller"`
	Term    uint64 `json:"term"`
	Desired *int   `json:"desired"`
	Status  int    `json:"status"`
	Fault   string `json:"fault"`
}

func readAudit(t *testing.T, lc *cloudtest.LocalCloud, op string) []auditLine {
	t.Helper()
	var out []auditLine
	sc := bufio.NewScanner(bytes.NewReader(lc.Hook(http.MethodGet, "audit")))
	for sc.Scan() {
		var l auditLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		if l.Op == op {
			out = append(out, l)
		}
	}
	return out
}

func TestEveryAttemptCarriesTheLeadershipTerm(t *testing.T) {
	lc := cloudtest.StartLocalCloud(t)
	cl := openLocal(t, lc)
	createFleetGroup(t, lc, cl, "web", 0)

	// The first attempt is throttled; the SDK's retry must carry the term too.
	lc.Hook(http.MethodPost, "faults/api?operation=SetDesiredCapacity&code=Throttling&count=1")
	if err := cl.SetDesiredCapacity(cloud.WithTerm(context.Background(), 42), "web", 1); err != nil {
		t.Fatal(err)
	}
	// A call made outside any term carries none.
	if err := cl.SetDesiredCapacity(context.Background(), "web", 0); err != nil {
		t.Fatal(err)
	}

	got := readAudit(t, lc, "SetDesiredCapacity")
	if len(got) != 3 {
		t.Fatalf("audit has %d SetDesiredCapacity records, want 3 (throttled, retried, untermed): %+v", len(got), got)
	}
	want := []struct {
		term    uint64
		desired int
		status  int
		fault   string
	}{{42, 1, 400, "code"}, {42, 1, 200, ""}, {0, 0, 200, ""}}
	for i, w := range want {
		g := got[i]
		if g.Term != w.term || g.Desired == nil || *g.Desired != w.desired || g.Status != w.status || g.Fault != w.fault || g.Caller != "AKIDLOCALCLOUDTEST" {
			t.Errorf("record %d = %+v, want term %d desired %d status %d fault %q", i, g, w.term, w.desired, w.status, w.fault)
		}
	}
}
