// Package cloudtest is a hand-written fake of cloud.Cloud for the scaler's
// tests: every method calls a function field, every call is recorded, and an
// unset field fails the call with ErrUnexpectedCall so a test notices a call
// it did not plan for. Groups is a small in-memory model of Auto Scaling
// groups that can fill the group-related fields.
//
// It must never be imported outside tests and never talk to a network.
package cloudtest
