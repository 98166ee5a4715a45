// Package cli is shoal-lb's command line (cobra): `serve` runs the
// balancer and `loadtest` drives load at a target. Main is the whole
// program; the binary's main only sets up signals and exits with its code.
//
// It must never hold proxy or balancing logic: it parses flags into the
// config structs of the other packages and wires them together.
package cli
