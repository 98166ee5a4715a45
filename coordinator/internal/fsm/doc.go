// Package fsm is the coordinator's replicated state machine: fleets, the
// instance registry, the bounded decision history, cluster members and a small
// key→value watermark map, changed only by versioned commands that raft has
// committed.
//
// It must stay deterministic: Apply never reads a clock (the leader stamps
// time into each command), the network, AWS or randomness, and a command that
// fails validation leaves no partial state. Older command and snapshot
// versions must keep decoding so a rolling upgrade can read what the previous
// release wrote.
package fsm
