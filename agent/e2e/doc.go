//go:build multiprocess

// Package e2e runs the real shoal-agent binary (from $SHOAL_BIN) against a
// fake IMDS and a fake coordinator on loopback: identity from IMDS tags,
// streaming, buffering across a coordinator outage, drain, and shutdown.
//
// It must never touch anything but 127.0.0.0/8 and must kill every process
// it starts.
package e2e
