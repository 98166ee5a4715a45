package rpc

import (
	"context"
	"net"
	"testing"
	"time"
)

func TestReady(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer()
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()
	up, err := Dial(lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	if !Ready(ctx, up) {
		t.Fatalf("a listening server: not ready (%s)", up.GetState())
	}

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	down, err := Dial(closed.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	if Ready(ctx, down) {
		t.Fatal("nothing listening: ready")
	}
	if ctx.Err() != nil {
		t.Fatal("a refused connection was waited out instead of reported")
	}
}
