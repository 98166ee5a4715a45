// Package enrollbench drives the enrollment benchmark
// (deploy/bench/enroll.sh): N simulated agents on N local-cloud instances
// enroll at once, each the way shoal-agent does — its instance identity
// document and signature from its instance's IMDSv2, a fresh ECDSA P-256
// key and CSR, Enroll over server-authenticated TLS from the instance's own
// 127.x address, then a Connect stream with the issued certificate — and
// it reports the time until all stream. A counting proxy in front of the
// local cloud (Counter) gives the number of AWS calls the coordinators made
// meanwhile.
//
// It is a benchmark tool; it must never be pointed at real AWS or a
// production cluster.
package enrollbench
