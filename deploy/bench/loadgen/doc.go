// Package loadgen simulates a fleet of shoal-agents for the ingest capacity
// benchmark (deploy/bench/ingest.sh): N AgentService.Connect streams, each
// saying hello and then sending one sample batch per interval, spread over
// the coordinator nodes given and over a few shared client connections.
//
// It is a benchmark tool, built as deploy/bench/cmd/shoal-loadgen and kept
// out of the agent's binary. It must never be
// pointed at a production cluster: its instance ids are made up, and every
// stream registers an instance in the fleet it names.
package loadgen
