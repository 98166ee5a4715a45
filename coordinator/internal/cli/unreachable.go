package cli

import (
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"
)

// unreachableError is a call that failed because the connection to
// --address is down, not because the node answered with an error: a node
// that knows no leader also answers UNAVAILABLE, and must not be reported as
// one that cannot be reached.
type unreachableError struct{ err error }

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach %s: %s", g.address, status.Convert(e.err).Message())
}

func (e *unreachableError) Unwrap() error { return e.err }

// reachable marks err as unreachableError when cc is not connected after an
// UNAVAILABLE: gRPC gives the same code to a connection that could not be
// made and to a node's own answer, and only the connection state differs.
func reachable(cc *grpc.ClientConn, err error) error {
	if status.Code(err) == codes.Unavailable && cc.GetState() != connectivity.Ready {
		return &unreachableError{err: err}
	}
	return err
}
