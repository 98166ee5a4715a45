//go:build multiprocess

// Package demo is the end-to-end test of `make demo`: the shortened demo on
// the local cloud, its report and its clean stop. It is its own package so
// it is its own multi-process suite, bounded on its own.
package demo
