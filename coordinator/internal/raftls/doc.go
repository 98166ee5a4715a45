// Package raftls is the raft transport's stream layer over TLS 1.3: a
// raft.StreamLayer for raft.NewNetworkTransport whose listener and dialer
// accept only server certificates of the node's own cluster, verified
// against the CA bundle of a tlsconf.Source (reloaded there without a
// restart). Agents, LBs and operators have certificates from the same CA;
// none of them can join, vote or receive the log.
//
// It must never decide what raft does with a connection; it only secures it.
package raftls
