// Command shoal-localcloud is the AWS-compatible local cloud Shoal's tests
// and demo run against. It must never be used to talk to real AWS.
package main

import (
	"os"

	"github.com/shoal-dev/shoal/deploy/internal/localcloud/cli"
)

func main() {
	os.Exit(cli.Run(os.Args[1:]))
}
