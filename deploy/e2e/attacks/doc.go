//go:build multiprocess

// Package attacks replays, against a secure 3-node coordinator cluster of
// the real binaries on loopback, every attack issue 14 lists: the
// unauthenticated CLI, a stranger joining, raw FSM commands, raft
// AppendEntries from a non-member, fake and impersonating agents, a fake LB
// and instance-id flooding. Each must now fail for the attacker with the
// right status code, be counted in shoal_auth_denied_total (or the ingest
// refusal counter) under the right reason, and leave the replicated state
// and the LB's backend set as they were.
//
// The CA and every certificate are made with `shoal-coordinator tls`, ACLs
// are bootstrapped with `acl bootstrap`, and binaries come from $SHOAL_BIN
// through deploy/testkit. It never imports the coordinator's internal
// packages: the attacker only has the wire contract.
package attacks
