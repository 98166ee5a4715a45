//go:build multiprocess

// Package e2e runs deploy/'s binaries as separate processes: the local
// cloud's instance process groups after kill -9 and SIGTERM and across a
// restart with a state file, and every systemd unit's ExecStart against the
// real binary's flags. Binaries come from $SHOAL_BIN through deploy/testkit.
//
// "No orphan" means no member of an instance's process group still runs;
// members that exited wait for init to reap them and do not count.
package e2e
