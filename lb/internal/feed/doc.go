// Package feed is shoal-lb's coordinator client: one bidirectional
// BackendService.WatchBackends stream per fleet, applying every BackendSet
// to the balancer and sending an LBReport (per-backend requests, in-flight,
// errors, latency) every second. The report is the LB's lease.
//
// It must never clear the backend set because the coordinator is
// unreachable: the last-known set keeps serving (static stability). Nor
// may one bad entry (a duplicate address, a bad address, an unknown state)
// hold back a whole set: such entries are dropped, logged and counted
// (shoal_lb_feed_entries_dropped_total{reason}), and the rest is applied.
package feed
