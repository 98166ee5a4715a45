package rpc

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
)

// Ready connects cc if it is idle and waits, within ctx, until it is up or
// has failed; it reports whether it is up. gRPC fails a call with
// UNAVAILABLE both when the connection cannot be made (the request never
// left) and when the server answers UNAVAILABLE itself; only the state seen
// before the call tells the two apart. The state, not the picker, is
// checked: gRPC updates the picker first, so a connection reported up is
// one calls go out on.
func Ready(ctx context.Context, cc *grpc.ClientConn) bool {
	for {
		st := cc.GetState()
		switch st {
		case connectivity.Ready:
			return true
		case connectivity.TransientFailure, connectivity.Shutdown:
			return false
		case connectivity.Idle:
			cc.Connect()
		}
		if !cc.WaitForStateChange(ctx, st) {
			return false
		}
	}
}
