//go:build multiprocess

// Package scaling holds the whole-system scaling tests on the local cloud
// (scale-out through leader crashes, scale-in through drains) and the
// detection-to-actuation measurement that `make bench` runs.
package scaling
