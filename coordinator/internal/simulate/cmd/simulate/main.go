// Command simulate runs the simulator on its own, for deploy/bench; the
// same command is `shoal-coordinator simulate`.
package main

import (
	"os"

	"github.com/shoal-dev/shoal/coordinator/internal/simulate"
)

func main() {
	if err := simulate.NewCommand().Execute(); err != nil {
		os.Exit(1)
	}
}
