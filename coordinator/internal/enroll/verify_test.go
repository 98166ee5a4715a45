package enroll

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

type fakeLookup struct {
	mu    sync.Mutex
	m     map[string]InstanceInfo
	err   error
	calls int
}

func (f *fakeLookup) LookupInstance(_ context.Context, id string) (InstanceInfo, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	info, ok := f.m[id]
	return info, ok, f.err
}

func commit(t *testing.T, f *fsm.FSM, c fsm.Command) {
	t.Helper()
	b, err := fsm.Stamp(c.Encode(), time.UnixMilli(1_800_000_000_000))
	if err != nil {
		t.Fatal(err)
	}
	if r := f.ApplyBytes(f.LastApplied()+1, b); r.Error() != nil {
		t.Fatal(r.Error())
	}
}

type world struct {
	v      *Verifier
	fsm    *fsm.FSM
	lookup *fakeLookup
	east   *signer
	west   *signer
}

// newWorld is a us-east-1 coordinator trusting east for us-east-1 and west
// for eu-west-1, with fleet "web" driving group "web-asg" that holds
// testID.
func newWorld(t *testing.T, now time.Time) *world {
	t.Helper()
	east, west := testSigners(t)
	trust := &TrustSet{}
	if err := trust.Add("us-east-1.pem", east.certPEM); err != nil {
		t.Fatal(err)
	}
	if err := trust.Add("bundle.pem", west.withRegion(t, "eu-west-1")); err != nil {
		t.Fatal(err)
	}
	f := fsm.New()
	commit(t, f, fsm.CreateFleet(&shoalv1.Fleet{Name: "web", Asg: "web-asg", Max: 5}))
	lk := &fakeLookup{m: map[string]InstanceInfo{
		testID:                {InstanceID: testID, Group: "web-asg", LifecycleState: "Pending"},
		"i-00000000000000001": {InstanceID: "i-00000000000000001", Group: "web-asg", LifecycleState: "Terminating"},
		"i-00000000000000002": {InstanceID: "i-00000000000000002", Group: "other-asg", LifecycleState: "InService"},
	}}
	cfg := DefaultConfig()
	cfg.TrustFiles, cfg.Region = []string{"us-east-1.pem"}, "us-east-1"
	v, err := NewVerifier(cfg, Deps{Trust: trust, Accounts: []string{testAccount}, Lookup: lk, State: FSMState{FSM: f},
		Denied: NewDeniedCounter(), Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return &world{v: v, fsm: f, lookup: lk, east: east, west: west}
}

var nonceA, nonceB = bytes.Repeat([]byte("a"), 32), bytes.Repeat([]byte("b"), 32)

func TestVerify(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 5, 0, 0, time.UTC)
	peer := netip.MustParseAddr(testIP)
	type evFn func(w *world) Evidence
	signed := func(mut func(map[string]any), nonce []byte) evFn {
		return func(w *world) Evidence {
			d := doc(t, mut)
			return Evidence{Document: d, Signature: w.east.sign(t, d), Nonce: nonce, Peer: peer}
		}
	}
	valid := signed(nil, nonceA)
	enrolled := func(nonce string, pending time.Time) func(*world) {
		return func(w *world) {
			commit(t, w.fsm, fsm.IdentityEnroll(fsm.Identity{InstanceID: testID, NonceSHA256: hexSHA(nonce), PendingTimeMS: pending.UnixMilli()}))
		}
	}
	for _, tc := range []struct {
		name    string
		before  func(*world)
		ev      evFn
		reason  Reason // "" with wantErr nil: accepted
		wantErr error
		lookups int // lookups made; -1: don't care
	}{
		{name: "valid", ev: valid, lookups: 1},
		{name: "valid, IPv4-mapped peer", ev: func(w *world) Evidence {
			e := valid(w)
			e.Peer = netip.AddrFrom16(peer.As16())
			return e
		}, lookups: 1},
		{name: "tampered document", ev: func(w *world) Evidence {
			e := valid(w)
			e.Document = bytes.Replace(e.Document, []byte(testIP), []byte("127.100.0.8"), 1)
			e.Peer = netip.MustParseAddr("127.100.0.8")
			return e
		}, reason: ReasonBadSignature},
		{name: "same JSON, other bytes", ev: func(w *world) Evidence {
			e := valid(w)
			e.Document = append(e.Document, '\n')
			return e
		}, reason: ReasonBadSignature},
		{name: "signature over different bytes", ev: func(w *world) Evidence {
			e := valid(w)
			e.Signature = w.east.sign(t, doc(t, func(m map[string]any) { m["instanceId"] = "i-0fff" }))
			return e
		}, reason: ReasonBadSignature},
		{name: "valid document checked against another region's certificate", ev: func(w *world) Evidence {
			// Signed by the key trusted for eu-west-1 only, the document
			// claims us-east-1.
			d := doc(t, nil)
			return Evidence{Document: d, Signature: w.west.sign(t, d), Nonce: nonceA, Peer: peer}
		}, reason: ReasonBadSignature},
		{name: "signature not base64", ev: func(w *world) Evidence {
			e := valid(w)
			e.Signature = []byte("not*base64")
			return e
		}, reason: ReasonBadSignature},
		{name: "untrusted signer", ev: func(w *world) Evidence {
			d := doc(t, nil)
			return Evidence{Document: d, Signature: newSigner(t, now.Add(-time.Hour), now.Add(time.Hour)).sign(t, d), Nonce: nonceA, Peer: peer}
		}, reason: ReasonBadSignature},
		{name: "wrong region", ev: func(w *world) Evidence {
			d := doc(t, func(m map[string]any) { m["region"] = "eu-west-1" })
			return Evidence{Document: d, Signature: w.west.sign(t, d), Nonce: nonceA, Peer: peer}
		}, reason: ReasonWrongRegion},
		{name: "unknown account", ev: signed(func(m map[string]any) { m["accountId"] = "210987654321" }, nonceA), reason: ReasonUnknownAccount},
		{name: "wrong IP", ev: func(w *world) Evidence {
			e := valid(w)
			e.Peer = netip.MustParseAddr("127.0.0.1")
			return e
		}, reason: ReasonIPMismatch},
		{name: "no peer address", ev: func(w *world) Evidence {
			e := valid(w)
			e.Peer = netip.Addr{}
			return e
		}, reason: ReasonIPMismatch},
		{name: "not in any group", ev: signed(func(m map[string]any) { m["instanceId"] = "i-0aaa" }, nonceA), reason: ReasonNotInFleet, lookups: 1},
		{name: "terminating", ev: signed(func(m map[string]any) { m["instanceId"] = "i-00000000000000001" }, nonceA), reason: ReasonNotInFleet, lookups: 1},
		{name: "group no fleet drives", ev: signed(func(m map[string]any) { m["instanceId"] = "i-00000000000000002" }, nonceA), reason: ReasonNotInFleet, lookups: 1},
		{name: "replay without the nonce", before: enrolled("first", testPending), ev: valid, reason: ReasonAlreadyEnrolled},
		{name: "replay with the nonce", before: enrolled(string(nonceA), testPending), ev: valid, lookups: 1},
		{name: "newer pendingTime", before: enrolled("first", testPending.Add(-time.Hour)), ev: valid, lookups: 1},
		{name: "after reset", before: func(w *world) {
			enrolled("first", testPending)(w)
			commit(t, w.fsm, fsm.IdentityReset(testID))
		}, ev: valid, lookups: 1},
		{name: "expired signing certificate", ev: func(w *world) Evidence {
			old := &signer{key: w.east.key, certPEM: certFor(t, w.east.key, now.Add(-48*time.Hour), now.Add(-24*time.Hour))}
			tr := &TrustSet{}
			if err := tr.Add("us-east-1.pem", old.certPEM); err != nil {
				t.Fatal(err)
			}
			w.v.trust = tr
			return valid(w)
		}, reason: ReasonExpired},
		{name: "nonce too short", ev: signed(nil, []byte("short")), wantErr: ErrInvalid},
		{name: "document too large", ev: func(w *world) Evidence {
			e := valid(w)
			e.Document = bytes.Repeat([]byte(" "), MaxDocumentSize+1)
			return e
		}, wantErr: ErrInvalid},
		{name: "signed garbage", ev: func(w *world) Evidence {
			d := []byte(`{"instanceId": "../etc"}`)
			return Evidence{Document: d, Signature: w.east.sign(t, d), Nonce: nonceA, Peer: peer}
		}, wantErr: ErrInvalid},
		{name: "lookup fails", before: func(w *world) { w.lookup.err = errors.New("throttled") }, ev: valid, wantErr: errAny, lookups: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, now)
			if tc.before != nil {
				tc.before(w)
			}
			before := w.fsm.Save()
			e, err := w.v.Verify(context.Background(), tc.ev(w))
			if !bytes.Equal(before, w.fsm.Save()) {
				t.Fatal("Verify changed the state")
			}
			if w.lookup.calls != tc.lookups {
				t.Errorf("lookups = %d, want %d (a refused caller must cost no AWS call)", w.lookup.calls, tc.lookups)
			}
			switch {
			case tc.reason != "":
				if r, ok := ReasonOf(err); !ok || r != tc.reason || !errors.Is(err, ErrDenied) {
					t.Fatalf("err = %v, want refusal %s", err, tc.reason)
				}
				if n := testutil.ToFloat64(w.v.denied.WithLabelValues(string(tc.reason))); n != 1 {
					t.Fatalf("shoal_auth_denied_total{reason=%q} = %v, want 1", tc.reason, n)
				}
			case tc.wantErr == errAny:
				if err == nil || errors.Is(err, ErrDenied) {
					t.Fatalf("err = %v, want a failure that is no refusal", err)
				}
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if e.Fleet != "web" || e.Group != "web-asg" || e.Document.InstanceID != testID || e.Record.InstanceID != testID ||
					e.Record.NonceSHA256 != hexSHA(string(nonceA)) || e.Record.PendingTimeMS != testPending.UnixMilli() {
					t.Fatalf("enrollment = %+v", e)
				}
				// The caller commits the record; the FSM accepts it.
				commit(t, w.fsm, fsm.IdentityEnroll(e.Record))
			}
		})
	}
}

var errAny = errors.New("any error")

// TestVerifyRace: of two enrollments verified before either commits, the
// FSM records one; the loser's commit maps to already_enrolled.
func TestVerifyRace(t *testing.T) {
	w := newWorld(t, time.Date(2026, 3, 1, 12, 5, 0, 0, time.UTC))
	mk := func(nonce []byte) *Enrollment {
		d := doc(t, nil)
		e, err := w.v.Verify(context.Background(), Evidence{Document: d, Signature: w.east.sign(t, d), Nonce: nonce, Peer: netip.MustParseAddr(testIP)})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	a, b := mk(nonceA), mk(nonceB)
	commit(t, w.fsm, fsm.IdentityEnroll(a.Record))
	stamped, _ := fsm.Stamp(fsm.IdentityEnroll(b.Record).Encode(), time.UnixMilli(1))
	err := w.v.RecordRefusal(w.fsm.ApplyBytes(w.fsm.LastApplied()+1, stamped).Error())
	if r, ok := ReasonOf(err); !ok || r != ReasonAlreadyEnrolled {
		t.Fatalf("second commit: %v, want already_enrolled", err)
	}
	if w.v.RecordRefusal(nil) != nil {
		t.Fatal("RecordRefusal(nil) != nil")
	}
}

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig()
	good.TrustFiles, good.Region = []string{"us-east-1.pem"}, "us-east-1"
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mut  func(*Config)
		want string
	}{
		{"no trust", func(c *Config) { c.TrustFiles = nil }, "iid-trust: at least one"},
		{"empty trust name", func(c *Config) { c.TrustFiles = []string{" "} }, "iid-trust[0]: empty"},
		{"bad account", func(c *Config) { c.Accounts = []string{"12345"} }, `iid-accounts ("12345")`},
		{"no region", func(c *Config) { c.Region = "" }, "region: required"},
		{"bad region", func(c *Config) { c.Region = "US East" }, "region: "},
		{"ttl too long", func(c *Config) { c.AgentCertTTL = 25 * time.Hour }, "agent-cert-ttl (25h0m0s)"},
		{"ttl zero", func(c *Config) { c.AgentCertTTL = 0 }, "agent-cert-ttl (0s)"},
		{"batch too big", func(c *Config) { c.Lookup.MaxBatch = 51 }, "lookup max batch (51)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			c.TrustFiles = append([]string(nil), good.TrustFiles...)
			tc.mut(&c)
			if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want %q", err, tc.want)
			}
		})
	}
}
