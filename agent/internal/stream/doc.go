// Package stream keeps the agent's one AgentService.Connect stream to a
// coordinator node: hello, then sample batches; config and commands back.
// It reconnects with exponential backoff and jitter over every address,
// follows a node's redirect to the leader, and buffers samples while
// disconnected in a bounded drop-oldest buffer whose drops are counted and
// reported upstream.
//
// It must never block the collector: Push returns at once, dropping the
// oldest sample when the buffer is full, and never holds more than its bound.
package stream
