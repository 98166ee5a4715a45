// Package runner is the agent's main loop: every interval it collects the
// metric sources, checks readiness, and pushes one sample to the stream, and
// it keeps the agent's own Prometheus metrics.
//
// It must never block on the network: pushing to the stream is non-blocking,
// and a slow health check or scrape is bounded by its timeout.
package runner
