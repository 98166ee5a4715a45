// Package trust gives the agent its credentials for the coordinators: it
// enrolls over server-authenticated TLS with the instance identity document
// when nothing usable is stored, keeps the key, chain and nonce under the
// data directory (agent/internal/enroll), renews the certificate at two
// thirds of its life over mutual TLS, and builds the dial options every
// coordinator connection uses, bound to the instance's private IP.
//
// It must never send the key, never trust a certificate the coordinator did
// not issue for this instance, and never turn a refusal into a crash loop:
// refusals are logged with their reason and retried slowly.
package trust
