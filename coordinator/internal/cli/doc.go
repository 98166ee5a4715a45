// Package cli is shoal-coordinator's command line: `serve` runs a node, and
// the operator commands talk gRPC (ControlService, ACLService) to any node,
// over mutual TLS with --ca-cert/--client-cert/--client-key and a token from
// --token (or SHOAL_CACERT, SHOAL_CLIENT_CERT, SHOAL_CLIENT_KEY, SHOAL_TOKEN),
// or in plaintext to an --insecure cluster when no CA is given. One file per
// subcommand. Main takes everything from the process as arguments (context,
// args, stdout, stderr, getenv), so tests run the real command line with
// their own environment; `serve` hands a node.Config to package node. The
// `tls` commands work offline, on files: they create the CA and issue
// certificates through package pki.
//
// Output goes through coordinator/internal/view so JSON keys are snake_case
// and values are the vocabulary words. It must never print multi-line errors:
// one line naming the field and the reason, and a non-zero exit.
package cli
