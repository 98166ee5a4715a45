#!/usr/bin/env bash
# Raft apply throughput and commit latency on a 3-node loopback cluster, for
# the log store shoal-coordinator uses (raft-wal) next to raft-boltdb/v2.
# Each row: one phase of OPS commands, one writer (c1) or CONC writers, timed
# from raft.Apply on the leader to commit plus FSM apply.
#   OPS=2000 CONC=32 deploy/bench/raft.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
OPS=${OPS:-2000}
CONC=${CONC:-32}
# A benchmark tool, not part of the product: built here, not by make build.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/shoal-bench-raft" ./coordinator/cmd/shoal-bench-raft
echo "raft apply on a 3-node loopback cluster (ops=$OPS per phase, $(nproc) CPUs, load $(cut -d' ' -f1 /proc/loadavg))"
header=
for store in wal boltdb; do
	"$tmp/shoal-bench-raft" --store "$store" --ops "$OPS" --concurrency "$CONC" $header
	header=--no-header
done
