// Command shoal-soak is what `make soak` runs: the whole Shoal system under
// demo-like load with spikes for a long time, sampling what every process
// holds. See deploy/soak.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/shoal-dev/shoal/deploy/soak"
)

// Ctrl-C and SIGTERM end the soak's context: it stops every process it
// started before it exits.
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := soak.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
