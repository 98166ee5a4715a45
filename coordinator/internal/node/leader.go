package node

import (
	"context"
	"errors"
	"sync"
	"time"

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
		leader := n.raft.IsLeader()
		if leader && !t.running() {
			t.start(ctx, n.lead)
		} else if !leader && t.running() {
			t.end()
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
}

func (t *term) running() bool { return t.stop != nil }

func (t *term) start(ctx context.Context, lead func(context.Context)) {
	lctx, stop := context.WithCancel(ctx)
	t.stop, t.done = stop, make(chan struct{})
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
	for {
		err := n.raft.ReadBarrier(ctx)
		if err == nil {
			break
		}
		if ctx.Err() != nil || errors.Is(err, cluster.ErrNotLeader) {
			return
		}
		log.Warn("node: waiting to catch up before acting", "err", err)
	}
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
