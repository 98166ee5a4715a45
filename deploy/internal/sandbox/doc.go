// Package sandbox brings the whole Shoal system up on one machine — the local
// cloud, a raft coordinator cluster, a golden instance, the fleet bootstrap and
// shoal-lb — as real processes on free loopback ports under a temporary
// directory, and tears it all down again.
//
// It is what `make demo` and the multi-process end-to-end tests stand on. It
// starts binaries from a bin directory (`make build`), talks to the local cloud
// through aws-sdk-go-v2 and its /_localcloud/ hooks, and to the coordinators
// through their CLI.
//
// A multi-process test reads:
//
//	opts := sandbox.DefaultOptions()
//	opts.BinDir = os.Getenv("SHOAL_BIN")
//	sb, err := sandbox.Start(ctx, opts)
//	defer sb.Close()
//	sb.RunGolden(ctx, 50)                         // demoapp + agent, 50 req/s
//	sb.Bootstrap(ctx, sandbox.Bootstrap{})        // fleet "web", 2–6, util 50
//	sb.WaitInService(ctx, "web", 2, 30*time.Second)
//	sb.StartLB(ctx, "web")                        // sb.LBURL
//	sb.Spawn("load", "shoal-lb", []string{"loadtest", "--target", sb.LBURL + "/", ...}, &out)
//	leader, _ := sb.Leader(ctx); sb.KillNode(leader); sb.RestartNode(ctx, leader)
//	sb.CLIJSON(ctx, &decisions, "decisions", "web")
//	sb.Instances(ctx); sb.AdvanceClock(ctx, time.Minute); sb.AWSConfig(ctx)
//
// A sandbox is secure by default, as production is: it creates a CA and
// issues every certificate with `shoal-coordinator tls` (deploy/internal/
// devpki), the local cloud signs identity documents (--iid-cert-out, which
// the coordinators trust with --iid-trust), fleet agents enroll with them
// and stream over mutual TLS from their instance's address, shoal-lb
// presents an lb certificate, and `acl bootstrap` yields the token every
// CLI call (CLI, CLIEnv, Dial) carries. Exports prints the SHOAL_* lines
// that give another shell the same access. Options.Insecure, for tests of
// --insecure only, runs everything in plaintext instead.
//
// It must never reach beyond 127.0.0.0/8, never wait without a deadline, and
// never leave a process behind: every process runs in its own process group
// (Setpgid) and Close kills the groups, including every instance the local
// cloud launched; should the program die without Close, the kernel kills the
// children (Pdeathsig) and the local cloud's instances die with it.
package sandbox
