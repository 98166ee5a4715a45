// Package acl defines operator ACL tokens: their policies (read, operate,
// admin), the secrets operators hold and the hashes the cluster keeps, and
// which policy each control RPC needs.
//
// A token's secret is a 256-bit random value shown once, when the token is
// made; raft stores only its SHA-256. The package is pure: it never reads a
// clock (callers pass the time) nor stores a secret, and it makes random
// values only in Generate, which runs on the server before a command is
// proposed, never inside the FSM.
package acl
