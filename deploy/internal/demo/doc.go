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
package demo
