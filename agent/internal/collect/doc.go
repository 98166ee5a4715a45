// Package collect reads the agent's per-second figures: host CPU, memory,
// load, network and root-disk usage, or the same for one workload (a cgroup v2
// or a process tree) when several "instances" share a host.
//
// Every source reads below a configurable root (the procfs and cgroupfs
// mount points), so the parsers run on fixture files in tests. This package
// must never invent a figure it cannot measure: a per-workload number that the
// kernel only keeps host-wide (network, disk) is reported host-wide and says
// so in its help text.
package collect
