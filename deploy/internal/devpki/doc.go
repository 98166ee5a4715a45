// Package devpki gives a sandbox or a multi-process test the trust a
// production cluster has, made on the spot: a CA and certificates created
// with the real `shoal-coordinator tls` commands, an ACL token from `acl
// bootstrap`, and the credentials (flags, SHOAL_* environment, gRPC dial
// options) that carry them.
//
// It runs the coordinator binary and never imports the coordinator's
// packages, so what it makes is exactly what an operator following the
// README would make. It writes only under the directory it is given, and
// it never runs a command without a deadline.
package devpki
