// Command shoal-agent streams per-second metrics of its instance to the Shoal
// coordinator. Everything is in agent/internal/cli.
package main

import (
	"os"

	"github.com/shoal-dev/shoal/agent/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
