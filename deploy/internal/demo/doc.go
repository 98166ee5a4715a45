// Package demo is what `make demo` runs: it brings the whole system up in a
// sandbox (local cloud, 3 coordinators, a golden instance, the fleet
// bootstrap, shoal-lb), drives a baseline → spike → baseline load through the
// load balancer with `shoal-lb loadtest`, prints one line per second
// (t rps p99 cpu_avg desired in_service draining decision), and writes
// demo-report/: timeline.csv, chart.svg and summary.json.
//
// It observes the system only from outside — the coordinators' control API,
// the load generator's output and the local cloud — and must never change
// what it measures: it makes no scaling decision, and every number in the
// report comes from a running component, none is computed ahead.
//
// With Config.Compare "aws" (`make demo DEMO_COMPARE=aws`) a second,
// identical fleet runs beside Shoal's behind its own shoal-lb and under the
// same load, scaled by the local cloud's AWS target tracking on a 10 s
// high-resolution metric that a stand-in for the CloudWatch agent
// (cwagent.go) publishes; Shoal knows that fleet only as a paused fleet
// without a policy, which feeds its load balancer and drains what its group
// terminates, as an ALB target group would (compare.go). summary.json's
// fleets puts the two side by side (fleets.go).
package demo
