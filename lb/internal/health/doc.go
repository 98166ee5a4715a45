// Package health runs shoal-lb's active health checks: a TCP connect (the
// default), an HTTP GET of a path, or the gRPC health protocol, against
// every backend of a balancer on an interval, recording the result on the
// backend so balance stops picking it.
//
// It must never remove backends from the set (the feed or the static list
// owns membership) nor block the request path.
package health
