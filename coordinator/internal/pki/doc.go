// Package pki creates Shoal's certificate authority and issues its
// certificates: ECDSA P-256 keys, random 128-bit serials, one SPIFFE URI SAN
// per leaf naming its cluster, role and name (see proto/rpc/tlsconf), and
// validity bounds per role (an agent's certificate lasts 24 h at most).
//
// A CA is constrained to its cluster's URIs, so its key cannot sign an
// identity of another cluster that a verifier would accept. IssueFromCSR
// takes only the public key from a request; the identity and names are the
// caller's. Keys are written 0600 and nothing is overwritten unless asked.
//
// It must never read the network or choose who gets a certificate; callers
// (the tls CLI, a future enrollment RPC) decide that.
package pki
