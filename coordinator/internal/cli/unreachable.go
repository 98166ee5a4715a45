package cli

import (
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// unreachableError is a call that failed because the connection to
// --address is down, not because the node answered with an error: a node
// that knows no leader also answers UNAVAILABLE, and must not be reported as
// one that cannot be reached.
type unreachableError struct {
	address string
	err     error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach %s: %s", e.address, status.Convert(e.err).Message())
}

func (e *unreachableError) Unwrap() error { return e.err }

// reachable marks err as unreachableError when the connection was not up
// before the call (see rpc.Ready): a node's own UNAVAILABLE is shown as the
// node said it. A connection that failed because the two sides disagree
// about TLS says so instead.
func (e *env) reachable(up bool, err error) error {
	if !up && status.Code(err) == codes.Unavailable {
		if d := e.diagnose(err); d != nil {
			return d
		}
		return &unreachableError{address: e.address, err: err}
	}
	return err
}
