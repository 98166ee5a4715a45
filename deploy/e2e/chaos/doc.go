//go:build multiprocess

// Package chaos is the end-to-end test of the nemesis harness
// (deploy/chaos): the fixed script, each fault kind once in a fixed order
// with no randomness, against the whole system on loopback, with every
// invariant of issue 15 asserted. It is its own package so it is its own
// multi-process suite, bounded on its own (at most 150 s of run).
package chaos
