package node

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shoal-dev/shoal/coordinator/internal/enroll"
	"github.com/shoal-dev/shoal/coordinator/internal/fsm"
)

// newEnrollService is enrollment's gRPC half over the node's write path.
func newEnrollService(v *enroll.Verifier, iss *enroll.Issuer, bundle []byte, commit func(context.Context, []byte) error, denied *prometheus.CounterVec, log *slog.Logger) (agentEnroller, error) {
	return enroll.NewService(enroll.ServiceDeps{
		Verifier: v, Issuer: iss, CACertsPEM: bundle, Denied: denied, Logger: log,
		Commit: func(ctx context.Context, c fsm.Command) error { return commit(ctx, c.Encode()) },
	})
}
