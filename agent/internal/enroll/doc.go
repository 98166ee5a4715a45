// Package enroll is the agent's side of enrollment, without the RPC: it
// makes the key, the CSR and the nonce the agent sends with its identity
// document, keeps the key, the issued chain and the nonce under the data
// directory, and decides at start whether the stored certificate is used,
// renewed, or replaced by enrolling again.
//
// It never sends anything and never trusts what it stores beyond checking
// that the key matches the certificate: the coordinator decides. Files are
// mode 0600 in a 0700 directory and are replaced only by atomic renames, so
// a crash leaves either the old credentials or the new, never a mix.
package enroll
