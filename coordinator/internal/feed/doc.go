// Package feed serves BackendService: it streams each shoal-lb its fleet's
// backend set and takes back the LB's per-backend load reports.
//
// Those reports are the LB's lease (an LB silent for LeaseTTL is no longer
// live) and the evidence that a draining backend has reached zero in-flight
// requests on every live LB, which the scaler waits for before terminating.
// An LB that lost its stream, and for a while after a leader change any LB
// the new leader has not heard from, still holds drains for ReconnectGrace:
// it keeps routing by its last set while it reconnects.
// They also yield the requests_per_target scaling metric.
//
// LB streams are few, so every one is served by the leader: a follower that
// receives one pipes it to the leader unchanged. BackendSet says which
// registry instances are backends and with what load; the caller reads the
// registry and the live metrics for it. The package never calls AWS.
package feed
