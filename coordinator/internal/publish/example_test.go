package publish_test

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/prometheus/client_golang/prometheus"

	awscloud "github.com/shoal-dev/shoal/coordinator/internal/cloud/aws"
	"github.com/shoal-dev/shoal/coordinator/internal/publish"
)

// How a newly elected leader publishes: one AWS config for every client (so
// one rate limiter), the watermark restored from raft, then one Period per
// interval from NextPeriod on.
func ExamplePublisher() {
	ctx := context.Background()
	cfg, err := awscloud.LoadConfig(ctx, awscloud.DefaultConfig())
	if err != nil {
		return
	}
	var committed time.Time // read from the FSM's "publish" watermark
	pc := publish.DefaultConfig()
	pc.Registerer = prometheus.DefaultRegisterer
	pc.Commit = func(ctx context.Context, start time.Time) error {
		// raft apply of fsm.SetWatermark("publish", start.UnixMilli())
		return nil
	}
	p, err := publish.New(cloudwatch.NewFromConfig(cfg), pc)
	if err != nil {
		return
	}
	p.Restore(committed)
	go p.Run(ctx)

	tick := time.NewTicker(pc.Interval)
	defer tick.Stop()
	for now := range tick.C {
		for start := p.NextPeriod(now); !start.Add(pc.Interval).After(now); start = start.Add(pc.Interval) {
			_ = p.Publish(publish.Period{Start: start /* Fleets: aggregates from ingest for [start, start+interval) */})
		}
	}
}
