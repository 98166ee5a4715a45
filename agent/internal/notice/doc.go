// Package notice watches instance metadata (IMDSv2) for the notices AWS
// gives before capacity goes away: a Spot interruption
// (spot/instance-action), a rebalance recommendation
// (events/recommendations/rebalance) and the Auto Scaling target lifecycle
// state (autoscaling/target-lifecycle-state). Each new notice becomes one
// shoal.v1.InstanceEvent for the coordinator stream.
//
// IMDS events carry no id, so the watcher de-duplicates by content: a notice
// is new when its kind's content differs from the last one sent. It never
// acts on a notice itself; draining and replacing are the coordinator's.
package notice
