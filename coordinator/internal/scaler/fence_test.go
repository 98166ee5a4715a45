package scaler

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// leadership leads in one term at a time; term 0 means it leads in none.
type leadership struct {
	mu   sync.Mutex
	term uint64
}

func (l *leadership) set(term uint64) { l.mu.Lock(); l.term = term; l.mu.Unlock() }

func (l *leadership) VerifyLeader(_ context.Context, term uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if term == 0 || term != l.term {
		return errors.New("a quorum answered with a newer term")
	}
	return nil
}

// fencedHarness is a harness whose scaler reaches the cloud through
// cloud.Fenced, as the node wires it.
func fencedHarness(t *testing.T, desired int32) (*harness, *leadership) {
	t.Helper()
	h := newHarness(t, desired, cpuPolicy())
	l := &leadership{}
	cfg := DefaultConfig()
	cfg.Now, cfg.Logger, cfg.NodeID = h.clk.Now, slog.New(slog.NewTextHandler(io.Discard, nil)), "n1"
	s, err := New(cfg, Deps{Store: h.store, Cloud: cloud.Fenced(h.cloud, l), Metrics: h.met, LBs: h.lbs, Agents: h.agents}, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.s = s
	return h, l
}

func (h *harness) tickIn(term uint64) {
	h.s.Tick(cloud.WithTerm(context.Background(), term))
	h.s.wg.Wait()
}

func TestUnverifiedLeadershipLeavesDecisionsPending(t *testing.T) {
	t.Run("manual decision", func(t *testing.T) {
		h, l := fencedHarness(t, 2)
		l.set(4) // a newer leader exists; this node still acts in term 3
		h.store.must(fsm.CreateDecision(&shoalv1.Decision{Fleet: fleet, PreviousCapacity: 2, Capacity: 5, Reason: "manual", Source: fsm.SourceManual}))
		h.tickIn(3)
		h.tickIn(3)
		if n := h.countCalls("SetDesiredCapacity"); n != 0 {
			t.Fatalf("%d SetDesiredCapacity calls reached the cloud without verified leadership", n)
		}
		if d := h.decisions()[0]; d.Status != pending {
			t.Fatalf("decision = %v, want still pending", d)
		}
		// The leader of term 4 applies it, once.
		h.tickIn(4)
		h.tickIn(4)
		if n, got := h.countCalls("SetDesiredCapacity"), h.cloud.group(asg).Desired; n != 1 || got != 5 {
			t.Fatalf("after the new leader: %d calls, desired %d; want 1 call to 5", n, got)
		}
		if d := h.decisions()[0]; d.Status != applied {
			t.Fatalf("decision = %v, want applied", d)
		}
	})
	t.Run("automatic decision", func(t *testing.T) {
		h, l := fencedHarness(t, 2)
		l.set(3)
		h.tickIn(3)
		ids := h.ids(cloud.LifecycleInService)
		h.met.set(ids, "cpu", 100)
		for _, id := range ids {
			h.store.must(fsm.SetInstanceState(id, shoalv1.InstanceState_INSTANCE_STATE_IN_SERVICE))
		}
		l.set(0) // leadership lost between the decision and the call
		h.clk.Add(time.Second)
		h.tickIn(3)
		ds := h.decisions()
		if len(ds) != 1 || ds[0].Status != pending || h.countCalls("SetDesiredCapacity") != 0 {
			t.Fatalf("decisions %v, %d calls: want one pending decision and no call", ds, h.countCalls("SetDesiredCapacity"))
		}
		l.set(5)
		h.tickIn(5)
		if ds := h.decisions(); len(ds) != 1 || ds[0].Status != applied || h.cloud.group(asg).Desired != ds[0].Capacity {
			t.Fatalf("after the new leader: %v, desired %d", ds, h.cloud.group(asg).Desired)
		}
	})
}
