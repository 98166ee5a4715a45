// Package testkit is the one harness for tests that run Shoal's real
// binaries as separate processes: the multiprocess e2e suites of every
// component and the coordinator's cloudtest. The sandbox, which shoal-demo
// links and so cannot import a package built on testing, shares its
// process-group checks (deploy/internal/pgroup).
//
// It finds binaries in $SHOAL_BIN (skipping with one message when unset),
// starts each process in its own process group with its output captured to a
// log file, stops it with SIGTERM then SIGKILL after a bound, and registers a
// cleanup that leaves no member of the group running. It also hands out free
// loopback addresses and waits, always under a deadline, for a TCP port or an
// HTTP endpoint to answer.
//
// For secure clusters it makes a CA and certificates with the real
// `shoal-coordinator tls` commands (NewPKI, Cert, ServerCert, TLSFlags),
// bootstraps ACLs (BootstrapACL, TryBootstrapACL), and builds the
// operator's gRPC options and SHOAL_* environment (DialOptions with a
// TokenSource, Creds.Env, Environ).
//
// "Gone" means no member of a process group is still running: a zombie has
// exited and runs nothing, and who reaps it (init, a subreaper) is not the
// test's business, so zombies count as gone. kill(-pgid, 0) succeeds on a
// group of zombies, which is why the checks here read /proc instead.
//
// It must never be imported by non-test product code: it calls t.Skip and
// t.Fatal and kills processes.
package testkit
