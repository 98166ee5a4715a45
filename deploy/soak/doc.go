// Package soak is `make soak`: the whole Shoal system (deploy/internal/
// sandbox, secure by default, as the demo runs it) under demo-like load with
// a spike every few minutes, for a long time, while it samples every
// process's RSS, open file descriptors and goroutines. It reports each
// process's slope per hour (least squares over the samples after a warm-up)
// and every failed request, and writes soak-report/ (report.json and
// report.txt).
//
// It answers "does anything grow?", not "is it fast?": the slopes are
// reported, never judged, because a short run cannot tell a leak from a
// cache filling up. What it does judge is the load: a failed request makes
// the run fail. It must never reach beyond 127.0.0.0/8, and every load
// process it starts is bounded in time.
package soak
