// Package fsm is the coordinator's replicated state machine: fleets, the
// instance registry, the bounded decision history, each fleet's newest timed
// launches, cluster members and a small key→value watermark map, changed only
// by versioned commands that raft has committed.
//
// It must stay deterministic: Apply never reads a clock (the leader stamps
// time into each command), the network, AWS or randomness, and a command that
// fails validation leaves no partial state. Older command and snapshot
// versions must keep decoding so a rolling upgrade can read what the previous
// release wrote.
//
// It defends itself: the log has more doors than the API (ApplyCommand,
// forwarded calls, snapshot restore), so every rule on what may be stored is
// checked here, not only at the server. An invalid command is refused with
// an error naming the field and reason and counted in Rejected, never
// applied; a restore command's snapshot is checked whole before it replaces
// anything.
package fsm
