package console

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/shoal-dev/shoal/coordinator/internal/apierr"
	"github.com/shoal-dev/shoal/coordinator/internal/view"
	shoalv1 "github.com/shoal-dev/shoal/proto/gen/shoal/v1"
)

// readState reads through the API from the leader; when no leader can be
// asked it reads this node's own copy and says the result is stale.
func (c *Console) readState(ctx context.Context, h *view.ConsoleHeader, fn func(ctx context.Context, stale bool) error) error {
	if !h.Stale && c.cfg.Local.LeaderID() != "" {
		err := fn(ctx, false)
		if err == nil || !leaderUnavailable(err) {
			return err
		}
		h.Stale, h.StaleReason = true, status.Convert(err).Message()
	} else if !h.Stale {
		h.Stale, h.StaleReason = true, "this node knows no leader"
	}
	return fn(ctx, true)
}

func leaderUnavailable(err error) bool {
	switch apierr.Reason(err) {
	case apierr.NoLeader, apierr.NotLeader:
		return true
	}
	return status.Code(err) == codes.Unavailable || errors.Is(err, context.DeadlineExceeded)
}

// header starts an event.
func (c *Console) header() view.ConsoleHeader {
	return view.ConsoleHeader{At: view.Timestamp(c.cfg.Now().UnixMilli()), Node: c.cfg.Local.NodeID(), Insecure: c.cfg.Insecure}
}

// readCtx is the context producers read with: as the serving node, since
// one read serves every viewer and each viewer's token was checked when
// it subscribed (and is checked again before each event).
func (c *Console) readCtx(ctx context.Context) context.Context {
	if c.cfg.ReadAs == nil {
		return ctx
	}
	return c.cfg.ReadAs(ctx)
}

// counts tallies instances by state word.
func counts(ins []*shoalv1.Instance) map[string]int {
	out := map[string]int{"in_service": 0, "pending": 0, "draining": 0, "unhealthy": 0}
	for _, in := range ins {
		out[view.InstanceStateWord(in.State)]++
	}
	return out
}

// fleetExists is producerFor's check for a fleet page, with the viewer's
// own context, so an unknown fleet is a 404 before any stream opens.
func (c *Console) producerFor(ctx context.Context, name string) (func() producer, error) {
	switch {
	case name == topicCluster:
		return func() producer { return &clusterProducer{c: c} }, nil
	case name == topicFleets:
		return func() producer { return &fleetsProducer{c: c} }, nil
	case name == topicLBs:
		return func() producer { return &lbsProducer{c: c} }, nil
	}
	fleet := name[len(topicFleet):]
	h := c.header()
	err := c.readState(ctx, &h, func(ctx context.Context, stale bool) error {
		_, err := c.cfg.API.GetFleet(ctx, &shoalv1.GetFleetRequest{Fleet: fleet, Stale: stale})
		return err
	})
	if err != nil {
		return nil, err
	}
	return func() producer { return newFleetProducer(c, fleet) }, nil
}
