// Command shoal-lb is Shoal's L7 load balancer; see lb/internal/cli.
package main

import (
	"os"

	"github.com/shoal-dev/shoal/lb/internal/cli"
)

func main() { os.Exit(cli.Run(os.Args[1:])) }
