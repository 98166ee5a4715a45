package loadgen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// stream is one simulated agent.
type stream struct {
	cfg    *Config
	c      *counters
	i      int
	start  time.Time
	client shoalv1.AgentServiceClient
}

func (s *stream) run(ctx context.Context) {
	n := time.Duration(s.cfg.Agents)
	if !sleep(ctx, s.cfg.Ramp*time.Duration(s.i)/n) {
		return
	}
	rng := rand.New(rand.NewPCG(uint64(s.i), uint64(s.start.UnixNano())))
	for ctx.Err() == nil {
		s.session(ctx, rng)
		if !sleep(ctx, s.cfg.Backoff) {
			return
		}
	}
}

func (s *stream) hello() *shoalv1.AgentHello {
	return &shoalv1.AgentHello{
		InstanceId:   instanceID(s.cfg.IDPrefix, s.i),
		Fleet:        s.cfg.Fleet,
		PrivateIp:    fmt.Sprintf("10.%d.%d.%d", 100+s.i>>16&0xff, s.i>>8&0xff, s.i&0xff),
		AgentVersion: "loadgen",
		Interval:     durationpb.New(s.cfg.Interval),
		StartTime:    timestamppb.New(s.start),
	}
}

// session is one Connect stream, from hello until an error or the end.
func (s *stream) session(ctx context.Context, rng *rand.Rand) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := s.client.Connect(sctx)
	if err != nil {
		s.c.refused.Add(1)
		return
	}
	if err := st.Send(&shoalv1.ConnectRequest{Msg: &shoalv1.ConnectRequest_Hello{Hello: s.hello()}}); err != nil {
		s.c.refused.Add(1)
		return
	}
	first, err := st.Recv()
	if err != nil || first.GetWelcome() == nil {
		s.c.refused.Add(1)
		return
	}
	s.c.connects.Add(1)
	s.c.up.Add(1)
	defer s.c.up.Add(-1)

	// The coordinator only answers batches with rejects (and commands,
	// which a simulated agent ignores); a Recv error ends the session.
	dead := make(chan struct{})
	go func() {
		defer close(dead)
		for {
			m, err := st.Recv()
			if err != nil {
				return
			}
			if a := m.GetAck(); a != nil {
				s.c.rejected.Add(uint64(a.GetRejected()))
			}
		}
	}()

	names := metricNames(s.cfg.Metrics)
	base := 10 + float64(s.i%80)
	iv := s.cfg.Interval
	phase := iv * time.Duration(s.i) / time.Duration(s.cfg.Agents)
	slot := s.nextSlot(s.cfg.Now(), phase)
	timer := time.NewTimer(time.Until(slot))
	defer timer.Stop()
	var seq uint64
	for {
		select {
		case <-ctx.Done():
			_ = st.CloseSend()
			return
		case <-dead:
			return
		case <-timer.C:
		}
		now := s.cfg.Now()
		if now.Sub(slot) > iv/4 {
			s.c.late.Add(1)
		}
		// A fresh map each time: gRPC may read a sent message after Send.
		values := make(map[string]float64, len(names))
		for _, name := range names {
			values[name] = base + rng.Float64()*10
		}
		seq++
		// The sample is timestamped when it is sent, as a real agent's is
		// when it is taken, so the generator's own scheduling lag is not
		// counted as ingest latency.
		b := &shoalv1.SampleBatch{Seq: seq, Ready: true,
			Samples: []*shoalv1.Sample{{UnixMs: now.UnixMilli(), Values: values}}}
		if err := st.Send(&shoalv1.ConnectRequest{Msg: &shoalv1.ConnectRequest_Batch{Batch: b}}); err != nil {
			if ctx.Err() == nil { // not the run ending
				s.c.failed.Add(1)
			}
			return
		}
		s.c.sent.Add(1)
		// A generator that fell behind skips the slots it missed, as an
		// agent would; Summary.Sent then falls short of Expected.
		slot = s.nextSlot(now, phase)
		timer.Reset(time.Until(slot))
	}
}

// nextSlot is the first send time after now: start + phase + k·interval.
func (s *stream) nextSlot(now time.Time, phase time.Duration) time.Time {
	iv := s.cfg.Interval
	k := now.Sub(s.start.Add(phase))/iv + 1
	return s.start.Add(phase + k*iv)
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
