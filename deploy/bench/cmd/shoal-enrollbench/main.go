// Command shoal-enrollbench is the enrollment benchmark's driver
// (deploy/bench/enroll.sh). Everything is in deploy/bench/enrollbench.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/shoal-dev/shoal/deploy/bench/enrollbench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := enrollbench.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
