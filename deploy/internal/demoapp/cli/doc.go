// Package cli is shoal-demoapp's command line: flags into a demoapp.Config,
// the instance id lookup, and the signal handling that turns SIGTERM into a
// graceful shutdown.
//
// It must never hold serving logic; that lives in package demoapp.
package cli
