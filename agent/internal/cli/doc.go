// Package cli is shoal-agent's command line (cobra): `shoal-agent run` and
// the root command, which runs too so a systemd unit can be
// `shoal-agent --flags`. It parses and validates flags and wires the
// collect, health, identity, stream and runner packages together.
//
// It must never hold logic those packages can test on their own: it only
// builds them from flags.
package cli
