package cli

import (
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"github.com/shoal-dev/shoal/lb/internal/benchbackend"
)

func newBenchBackendCmd() *cobra.Command {
	var httpAddr, grpcAddr, name string
	cmd := &cobra.Command{
		Use:    "bench-backend",
		Short:  "tiny HTTP + gRPC backend for benchmarks and tests",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if httpAddr == "" && grpcAddr == "" {
				return fmt.Errorf("http and grpc: at least one address is required")
			}
			b := benchbackend.New(name)
			errc := make(chan error, 2)
			for _, x := range []struct {
				addr  string
				serve func(net.Listener) error
			}{{httpAddr, b.ServeHTTP}, {grpcAddr, b.ServeGRPC}} {
				if x.addr == "" {
					continue
				}
				ln, err := net.Listen("tcp", x.addr)
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "listening %s\n", ln.Addr())
				go func() { errc <- x.serve(ln) }()
			}
			select {
			case <-cmd.Context().Done():
				b.Close()
				return nil
			case err := <-errc:
				b.Close()
				return err
			}
		},
	}
	cmd.Flags().StringVar(&httpAddr, "http", "", "HTTP listen address")
	cmd.Flags().StringVar(&grpcAddr, "grpc", "", "gRPC listen address")
	cmd.Flags().StringVar(&name, "name", "backend", "instance name returned in X-Shoal-Instance")
	return cmd
}
