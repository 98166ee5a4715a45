package publish

import (
	"os"
	"testing"

	"github.com/shoal-dev/shoal/coordinator/internal/cloud/cloudtest"
)

func TestMain(m *testing.M) { os.Exit(cloudtest.RunMain(m)) }
