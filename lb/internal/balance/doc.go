// Package balance is shoal-lb's one balancing core: it holds a fleet's
// backends, picks one per request (power-of-two-choices on in-flight weighted
// by reported load, round-robin or least-outstanding), ramps new backends up
// (slow start), ejects outliers passively, and bounds retries with a budget.
//
// It is shared by every transport (HTTP/1.1, h2c, gRPC) and must never do I/O,
// take a lock on the per-request path, or know about a transport: transports
// hang their own per-backend state off Backend.Transport.
package balance
