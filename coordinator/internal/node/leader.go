package node

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud"
	"github.com/shoal-dev/shoal/coordinator/internal/cluster"
	"github.com/shoal-dev/shoal/coordinator/internal/publish"
)

// runLoops drives ingestion on every node and the leader-only loops while
// this node leads, until ctx ends. Returning means nothing of them touches
// raft any more.
func (n *Node) runLoops(ctx context.Context) {
	defer n.feed.Close()
	ingestDone := make(chan struct{})
	go func() {
		defer close(ingestDone)
		if err := n.ingest.Run(ctx); err != nil {
			n.log.Error("node: ingest stopped", "err", err)
		}
	}()
	defer func() { <-ingestDone }()
	ch, cancel := n.raft.Subscribe()
	defer cancel()
	t := &term{}
	defer t.end()
	check := time.NewTicker(n.cfg.LeaderCheckEvery)
	defer check.Stop()
	for {
		cur := n.raft.Term()
		stop, start := t.step(n.raft.IsLeader(), cur)
		if stop {
			t.end()
		}
		if start {
			t.start(ctx, n.lead, cur)
		}
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-check.C:
		}
	}
}

// term is one stretch of leadership: its loops run under their own context,
// ended when leadership goes.
type term struct {
	stop context.CancelFunc
	done chan struct{}
	// raft is the raft term the loops were started in.
	raft uint64
}

func (t *term) running() bool { return t.stop != nil }

// step says whether to end the running loops and whether to start new ones,
// given whether this node leads and raft's current term. Leadership lost
// and won back between two looks shows only as a newer term: the old loops
// then act on a stale view, and every cloud call they make would fail its
// leadership check (cloud.Fenced verifies the term they started in), so
// they are replaced.
func (t *term) step(leader bool, cur uint64) (stop, start bool) {
	switch {
	case leader && t.running() && t.raft != cur:
		return true, true
	case leader && !t.running():
		return false, true
	case !leader && t.running():
		return true, false
	}
	return false, false
}

func (t *term) start(ctx context.Context, lead func(context.Context), raftTerm uint64) {
	lctx, stop := context.WithCancel(ctx)
	t.stop, t.done, t.raft = stop, make(chan struct{}), raftTerm
	go func() { defer close(t.done); lead(lctx) }()
}

func (t *term) end() {
	if t.stop != nil {
		t.stop()
		<-t.done
		t.stop = nil
	}
}

// lead runs the leader-only loops for one term.
func (n *Node) lead(ctx context.Context) {
	log := n.log.With("component", "leader")
	log.Info("node: leading", "cloud", n.cfg.Cloud)
	if n.scaler == nil {
		<-ctx.Done()
		return
	}
	// A new leader may not have applied every entry its predecessor
	// committed (a decision committed just before a crash, say). Nothing
	// reads the FSM to act until it has: otherwise a pending decision would
	// be invisible and decided again.
	// Every cloud call of this term carries the term and, when it changes
	// the group, is preceded by a check that this term's leadership still
	// holds (cloud.Fenced). A term that ended just after its barrier reads
	// as 0: wait for the next one's barrier, or stop if leadership is gone.
	var t uint64
	for t == 0 {
		err := n.raft.ReadBarrier(ctx)
		if err == nil {
			t = n.raft.LeaderTerm()
			continue
		}
		if ctx.Err() != nil || errors.Is(err, cluster.ErrNotLeader) {
			return
		}
		log.Warn("node: waiting to catch up before acting", "err", err)
	}
	ctx = cloud.WithTerm(ctx, t)
	log = log.With("term", t)
	var wm publish.Watermarks
	if v, ok := n.raft.FSM().Watermark(publish.WatermarkKey); ok {
		wm.PublishedUpTo = time.UnixMilli(v)
	}
	if v, ok := n.raft.FSM().Watermark(publish.SettledKey); ok {
		wm.SettledUpTo = time.UnixMilli(v)
	}
	n.pub.Takeover(wm, time.Now())
	var wg sync.WaitGroup
	wg.Go(func() { n.scaler.Run(ctx) })
	wg.Go(func() {
		if err := n.pub.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("node: publisher stopped", "err", err)
		}
	})
	wg.Go(func() { n.pub.RunPeriods(ctx, periods{store: store{n.raft}, in: n.ingest, feed: n.feed}) })
	wg.Go(func() { n.rec.RunAlarms(ctx, store{n.raft}, n.cfg.AlarmEvery) })
	wg.Wait()
	log.Info("node: no longer leading")
}
