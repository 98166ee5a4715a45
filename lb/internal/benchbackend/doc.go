// Package benchbackend is the tiny backend that benchmarks and tests put
// behind shoal-lb: an HTTP server answering a short text body and a gRPC
// server implementing grpc.testing.TestService (unary and all three
// streaming kinds) plus the gRPC health service. Every answer names the
// instance (header X-Shoal-Instance), so spread can be measured.
//
// It must never do work beyond answering: its cost is not what is measured.
package benchbackend
