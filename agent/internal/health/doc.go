// Package health runs the application's readiness check (an HTTP GET or the
// gRPC health protocol) and says whether the instance is ready, and why not.
//
// It must never report ready when the check could not be run: an unreachable
// application is not ready.
package health
