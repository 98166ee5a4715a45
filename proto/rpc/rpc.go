package rpc

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
)

// MaxMessageBytes bounds every message on Shoal's gRPC services, both ways.
const MaxMessageBytes = 16 << 20

// ServerOptions are the options every Shoal gRPC server is built with.
// Extra options (interceptors, stats handlers) are appended by the caller.
func ServerOptions(extra ...grpc.ServerOption) []grpc.ServerOption {
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxMessageBytes),
		grpc.MaxSendMsgSize(MaxMessageBytes),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    10 * time.Second,
			Timeout: 5 * time.Second,
		}),
		// Agents and LBs ping every 10 s to notice a dead coordinator quickly;
		// allow it without a GOAWAY for "too many pings".
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             5 * time.Second,
			PermitWithoutStream: true,
		}),
	}
	return append(opts, extra...)
}

// NewServer returns a gRPC server built with ServerOptions.
func NewServer(extra ...grpc.ServerOption) *grpc.Server {
	return grpc.NewServer(ServerOptions(extra...)...)
}

// DialOptions are the options every Shoal gRPC client is built with.
func DialOptions(extra ...grpc.DialOption) []grpc.DialOption {
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(
			grpc.MaxCallRecvMsgSize(MaxMessageBytes),
			grpc.MaxCallSendMsgSize(MaxMessageBytes),
		),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time:                10 * time.Second,
			Timeout:             5 * time.Second,
			PermitWithoutStream: true,
		}),
	}
	return append(opts, extra...)
}

// Dial returns a client connection to addr (host:port) built with
// DialOptions. Like grpc.NewClient it does not connect until first used.
func Dial(addr string, extra ...grpc.DialOption) (*grpc.ClientConn, error) {
	return grpc.NewClient("passthrough:///"+addr, DialOptions(extra...)...)
}
