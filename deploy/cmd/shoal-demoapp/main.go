// Command shoal-demoapp is the demo workload Shoal scales; see
// deploy/internal/demoapp.
package main

import (
	"os"

	"github.com/shoal-dev/shoal/deploy/internal/demoapp/cli"
)

func main() { os.Exit(cli.Run(os.Args[1:])) }
