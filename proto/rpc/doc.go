// Package rpc builds every gRPC server and client connection in Shoal, in one
// place per side, so that transport security and token credentials change
// here and nowhere else. It holds no business logic and never dials on its own.
package rpc
