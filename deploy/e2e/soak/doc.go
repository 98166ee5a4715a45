//go:build multiprocess

// Package soak is the short profile of `make soak`: the whole system under
// load with one spike for about 45 s, to show that the sampler sees every
// process, computes slopes and that no request failed. It never judges the
// slopes: 45 s cannot tell a leak from a warm-up. It is its own package so
// it is its own multi-process suite, bounded on its own.
package soak
