// Package tlsconf builds the TLS configurations of every Shoal connection:
// gRPC servers and clients (wrapped by credentials here) and the raft
// transport (through coordinator/internal/raftls). It also reads a peer's
// identity, which is its certificate's one SPIFFE URI SAN
// (spiffe://<cluster>/<role>/<name>), and checks it against the roles an RPC
// accepts.
//
// Every connection is TLS 1.3 with certificates on both sides. Peers are
// verified against the CA bundle by SPIFFE id, never by host name, so a
// certificate of any role but server can never stand in for a server. A
// Source reloads the bundle, certificate and key from disk (Reload, Watch)
// without a restart; each handshake uses what was loaded last.
//
// It must never issue certificates (coordinator/internal/pki does) and never
// dial or listen on its own.
package tlsconf
