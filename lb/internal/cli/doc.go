// Package cli is shoal-lb's command line (cobra): `serve` runs the
// balancer, `loadtest` drives load at a target, and the hidden
// `bench-backend` is the tiny backend the benchmark and tests use.
//
// It must never hold proxy or balancing logic: it parses flags into the
// config structs of the other packages and wires them together.
package cli
