//go:build multiprocess

// Package spotdemo is the end-to-end test of `make demo DEMO_SCENARIO=spot`:
// the demo's spot scenario on the local cloud, where two of six instances
// under steady load get Spot interruption notices. It is its own package so
// it is its own multi-process suite, bounded on its own.
package spotdemo
