// Package cli is the shoal-localcloud command line: one file per
// subcommand. It parses flags into a localcloud.Config and never holds
// emulator logic itself; it must never point the local cloud at real AWS.
package cli
