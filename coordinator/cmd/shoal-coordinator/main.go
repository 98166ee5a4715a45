// Command shoal-coordinator runs a coordinator node (`serve`) and is the
// operator CLI for the cluster. All parsing lives in internal/cli.
package main

import (
	"os"

	"github.com/shoal-dev/shoal/coordinator/internal/cli"
)

func main() { os.Exit(cli.Run(os.Args[1:])) }
