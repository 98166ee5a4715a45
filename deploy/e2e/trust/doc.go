// Package trust checks, with the real binaries, that the sandbox (and so
// `make demo` and every multi-process suite built on it) runs secure by
// default — mutual TLS, enrolled agents, ACL tokens — and that its
// insecure mode is an explicit option only.
package trust
