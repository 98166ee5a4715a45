// Package chaos is Shoal's nemesis harness: it runs the whole system on
// loopback (through deploy/internal/sandbox, as the demo does) with every
// network link behind a TCP proxy it controls, injects faults chosen from a
// seed, records what every client saw, and checks the run's independent
// records against the invariants of "exactly one effect per decision, and no
// dropped request".
//
// The pieces, in the order a run uses them:
//   - Proxy and Net: one proxy per directed link (node→node, agents→node,
//     LB→node, operator→node, node→local cloud). A link can drop the bytes of
//     one direction or both, add latency, or be cut; a partition that starts
//     closes the link's open connections, so raft and gRPC notice at once
//     rather than after a keepalive. Proxies dial out from the client's own
//     loopback address, so a coordinator still sees an agent's instance IP.
//   - Runner: the sandbox wired through the proxies (SHOAL_DIAL_MAP and
//     SHOAL_REDIRECT_MAP of the coordinator's failpoints build, proxied
//     addresses for agents, shoal-lb and the operator, a proxied
//     AWS_ENDPOINT_URL per node), a load generator with spikes, and operator
//     commands (scale, pause, resume, policy set) whose call and return times
//     and results are recorded for the linearizability check.
//   - Nemeses: partitions (isolate the leader, random halves, one-way,
//     flapping), kill -9 and restart, SIGSTOP of the leader past the election
//     timeout, local cloud API faults, disk full and corrupt reads on one
//     coordinator, agent and LB disconnects. A Script is either drawn from a
//     seed with randomized timing or fixed.
//   - Check: reads the local cloud's audit log, the load generator's records,
//     every node's FSM and CloudWatch, and evaluates invariants 1–7 of issue
//     15; Report writes chaos-report/report.json and a timeline SVG.
//
// It must never reach beyond 127.0.0.0/8, never wait without a deadline,
// and never leave a process behind (the sandbox's Close guarantees that).
package chaos
