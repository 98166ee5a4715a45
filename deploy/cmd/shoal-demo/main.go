// Command shoal-demo is what `make demo` runs: the whole Shoal system on the
// local cloud through a load spike. See deploy/internal/demo.
package main

import (
	"os"

	"github.com/shoal-dev/shoal/deploy/internal/demo"
)

func main() {
	os.Exit(demo.Main(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}
