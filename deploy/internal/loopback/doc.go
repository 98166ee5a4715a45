// Package loopback picks listening addresses on 127.0.0.1 for the
// processes the demo and the multi-process tests start.
package loopback
