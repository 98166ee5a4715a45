// Command shoal-demo is what `make demo` runs: the whole Shoal system on the
// local cloud through a load spike. See deploy/internal/demo.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/shoal-dev/shoal/deploy/internal/demo"
)

// Ctrl-C and SIGTERM end the demo's context: it stops every process it
// started and reports that nothing was left behind before it exits.
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := demo.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
