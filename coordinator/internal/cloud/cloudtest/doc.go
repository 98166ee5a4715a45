// Package cloudtest holds test doubles for the cloud: Fake, a hand-written
// cloud.Cloud whose every method calls a function field and records the call
// (an unset field fails with ErrUnexpectedCall, so a test notices a call it
// did not plan for); Groups, a small in-memory model of Auto Scaling groups
// that can fill the Fake's group fields; and StartLocalCloud, which runs the
// real shoal-localcloud binary on a free loopback port for integration tests
// and skips when the binary cannot be had.
//
// It must never be imported outside tests, and nothing in it may reach
// beyond 127.0.0.0/8.
package cloudtest
