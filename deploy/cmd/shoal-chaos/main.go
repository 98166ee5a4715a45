// Command shoal-chaos is what `make chaos` runs: the whole Shoal system on
// loopback under a seeded nemesis, with its invariants checked. See
// deploy/chaos.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/shoal-dev/shoal/deploy/chaos"
)

// Ctrl-C and SIGTERM end the run's context: it stops every process it
// started before it exits.
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := chaos.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
