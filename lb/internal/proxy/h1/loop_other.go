//go:build !linux

package h1

import "net"

// The event loops need epoll: elsewhere --h1-engine loop is refused by the
// proxy's Validate (LoopSupported), and these stand in for loop.go's types.

// LoopSupported reports whether --h1-engine loop can run here.
const LoopSupported = false

type loop struct{}

func (*loop) shutdown() {}
func (*loop) closeAll() {}

type loops struct{}

func (*loops) each(func(*loop)) {}

type lback struct{}

func (*pool) shutdownLoops() {}

func (e *Engine) serveOnLoop(c net.Conn) { e.serve(c) }
