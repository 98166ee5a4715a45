// Command shoal-localcloud is the AWS-compatible local cloud Shoal's tests
// and demo run against. It must never be used to talk to real AWS.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/shoal-dev/shoal/deploy/internal/localcloud/cli"
)

// SIGINT and SIGTERM end serve's context, which terminates every instance's
// process group before exit; a SIGKILL leaves that to the instances'
// parent-death signal.
func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
