// Package publish is the leader's CloudWatch side: it turns each fleet's
// per-period aggregates into StatisticSets and sends them in as few
// PutMetricData calls as AWS's limits allow, keeps the CloudWatch alarms
// implied by the fleets' policies in step (plus one dead-man's switch on the
// coordinator's heartbeat), and reads series back for the `metrics` CLI. The
// leader's loops live here too: RunPeriods hands each complete period over,
// RunAlarms reconciles on a timer.
//
// It must never block its caller: Publish only queues, and a full queue drops
// its oldest batch (counted in /metrics) rather than wait. It must never
// publish a period twice, so the "published up to" watermark is committed
// before a period is sent, not after. It must never lose one silently: a new
// leader (Takeover) waits for the agents to come back, rebuilds every period
// after the watermark from its own samples, and counts, logs and records in
// CloudWatch (PeriodsLost) each one it cannot. It must never touch an alarm that is not
// this cluster's: only alarms named `<cluster>-...` on namespace Shoal with a
// ShoalCluster dimension of this cluster are updated or deleted.
package publish
