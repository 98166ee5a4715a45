// Package cli is shoal-coordinator's command line: `serve` runs a node, and
// the operator commands talk gRPC (ControlService) to any node. One file per
// subcommand; Root returns the cobra tree so more commands can be added with
// one AddCommand line.
//
// Output goes through coordinator/internal/view so JSON keys are snake_case
// and values are the vocabulary words. It must never print multi-line errors:
// one line naming the field and the reason, and a non-zero exit.
package cli
