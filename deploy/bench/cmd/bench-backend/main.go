// Command bench-backend is the tiny HTTP + gRPC backend that the load
// balancer benchmark (deploy/bench/lb.sh) and shoal-lb's multi-process tests
// put behind the proxies. It is not part of any product binary.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/shoal-dev/shoal/deploy/bench/benchbackend"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "bench-backend:", err)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench-backend", flag.ContinueOnError)
	fs.SetOutput(stderr)
	httpAddr := fs.String("http", "", "HTTP listen address")
	grpcAddr := fs.String("grpc", "", "gRPC listen address")
	name := fs.String("name", "backend", "instance name returned in X-Shoal-Instance")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *httpAddr == "" && *grpcAddr == "" {
		return errors.New("http and grpc: at least one address is required")
	}
	b := benchbackend.New(*name)
	defer b.Close()
	errc := make(chan error, 2)
	for _, x := range []struct {
		addr  string
		serve func(net.Listener) error
	}{{*httpAddr, b.ServeHTTP}, {*grpcAddr, b.ServeGRPC}} {
		if x.addr == "" {
			continue
		}
		ln, err := net.Listen("tcp", x.addr)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "listening %s\n", ln.Addr())
		go func() { errc <- x.serve(ln) }()
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}
