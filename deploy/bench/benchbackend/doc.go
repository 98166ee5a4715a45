// Package benchbackend is the tiny backend that benchmarks and tests put
// behind shoal-lb: an HTTP server answering a short text body and a gRPC
// server implementing grpc.testing.TestService (unary and all three
// streaming kinds) plus the gRPC health service. Every answer names the
// instance (header X-Shoal-Instance), so spread can be measured. The
// bench-backend command (deploy/bench/cmd/bench-backend) serves it.
//
// It is benchmark and test equipment, not part of shoal-lb's binary, and
// it must import nothing internal to lb. It must never do work beyond
// answering: its cost is not what is measured.
package benchbackend
