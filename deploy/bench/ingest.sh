#!/usr/bin/env bash
# Ingest capacity: N simulated agents (shoal-loadgen) stream one sample
# of 10 metrics a second each to a 3-node loopback coordinator cluster,
# spread over all three nodes (followers forward to the leader). For each N
# it reports the leader's sample-to-aggregate latency (p50/p99 of
# shoal_ingest_sample_latency_seconds over the measured window), the
# leader's CPU (% of one core) and RSS, and stops at the first N that misses
# p99 < 100 ms or that the generator cannot deliver.
#   INGEST_AGENTS="500 1000" INGEST_WARMUP=10 INGEST_WINDOW=20 deploy/bench/ingest.sh
# INGEST_KEEP=1 keeps the nodes' and the generator's logs.
# The generator runs on the same machine and competes with the cluster for
# its cores: the figures are a floor for a cluster on its own machines.
set -euo pipefail
cd "$(dirname "$0")/../.."
AGENTS=${INGEST_AGENTS:-"500 1000 2000 5000 7500 10000"}
WARMUP=${INGEST_WARMUP:-10}
WINDOW=${INGEST_WINDOW:-20}
FLEET=bench

make --no-print-directory build >/dev/null
BIN=$PWD/bin
tmp=$(mktemp -d /tmp/shoal-ingest-bench.XXXXXX)
pids=()
cleanup() {
	# Every process here runs in its own process group (setsid): kill the
	# groups, then wait so none outlives the script.
	for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
	sleep 1
	for p in "${pids[@]}"; do kill -KILL -- "-$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ -n "${INGEST_KEEP:-}" ]; then echo "ingest.sh: logs kept in $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

go build -o "$tmp/ingeststat" ./deploy/bench/ingeststat
STAT=$tmp/ingeststat
mapfile -t port < <("$STAT" ports 9)
raft=() rpc=() http=() pid=()
for i in 0 1 2; do
	raft[i]=127.0.0.1:${port[3*i]}
	rpc[i]=127.0.0.1:${port[3*i+1]}
	http[i]=127.0.0.1:${port[3*i+2]}
done
# Short raft timings as in coordinator/e2e, with room for a loaded machine.
raftflags=(--raft-heartbeat-timeout 400ms --raft-election-timeout 400ms
	--raft-leader-lease-timeout 200ms --raft-commit-timeout 5ms --no-leader-wait 5s
	--log-level warn --cloud none)
for i in 0 1 2; do
	join=(--bootstrap)
	if [ "$i" -gt 0 ]; then join=(--join "${rpc[0]}"); fi
	setsid "$BIN/shoal-coordinator" serve --node-id "n$((i + 1))" --data-dir "$tmp/n$((i + 1))" \
		--raft-addr "${raft[i]}" --rpc-addr "${rpc[i]}" --http-addr "${http[i]}" \
		"${join[@]}" "${raftflags[@]}" >"$tmp/n$((i + 1)).log" 2>&1 &
	pid[i]=$!
	pids+=("$!")
done

ctl() { "$BIN/shoal-coordinator" --timeout 5s "$@"; }
# The leader, once all three nodes are voters.
leader=
for _ in $(seq 1 150); do
	if st=$(ctl status -o json --address "${rpc[0]}" 2>/dev/null) &&
		[ "$(grep -o '"voter"' <<<"$st" | wc -l)" -ge 3 ]; then
		leader=$(sed -n 's/.*"leader_id": *"\([^"]*\)".*/\1/p' <<<"$st" | head -1)
		[ -n "$leader" ] && break
	fi
	sleep 0.2
done
if [ -z "$leader" ]; then
	echo "ingest.sh: no 3-node cluster within 30 s; logs:" >&2
	tail -n 20 "$tmp"/n*.log >&2
	exit 1
fi
li=$((${leader#n} - 1))
ctl fleet create "$FLEET" --asg "$FLEET-asg" --min 0 --max 100000 --address "${rpc[li]}" >/dev/null
# The fleet must be on every node before agents name it in their hellos.
for i in 0 1 2; do
	for _ in $(seq 1 50); do
		ctl fleet list --stale --address "${rpc[i]}" 2>/dev/null | grep -q "^$FLEET " && break
		sleep 0.2
	done
done
coords=$(IFS=,; echo "${rpc[*]}")

echo "ingest capacity: 3-node loopback cluster, leader $leader; agents at 1 Hz, 10 metrics each, spread over all nodes"
echo "($(nproc) CPUs shared with the load generator; ${WARMUP} s warm-up, ${WINDOW} s measured per row; load $(cut -d' ' -f1 /proc/loadavg))"
printf '%-7s %-11s %-9s %-9s %-10s %-13s %-12s %s\n' agents streams_up p50_ms p99_ms leader_cpu leader_rss_mb samples/s verdict
best=
for n in $AGENTS; do
	# Each row reuses the previous rows' instance ids and adds new ones.
	setsid "$BIN/shoal-loadgen" --coordinator "$coords" --fleet "$FLEET" --agents "$n" \
		--interval 1s --metrics 10 --ramp 5s --warmup "${WARMUP}s" --measure "${WINDOW}s" --duration "$((WARMUP + WINDOW + 2))s" \
		>"$tmp/lg$n.out" 2>"$tmp/lg$n.err" &
	lg=$!
	pids+=("$lg")
	sleep "$WARMUP"
	"$STAT" snap -pid "${pid[li]}" -url "http://${http[li]}/metrics" >"$tmp/a$n.json"
	sleep "$WINDOW"
	"$STAT" snap -pid "${pid[li]}" -url "http://${http[li]}/metrics" >"$tmp/b$n.json"
	wait "$lg" || { echo "ingest.sh: loadgen failed:" >&2; tail -n 5 "$tmp/lg$n.err" >&2; exit 1; }
	read -r samples backlog p50 p99 cpu rss hwm < <("$STAT" diff "$tmp/a$n.json" "$tmp/b$n.json")
	sum=$(cat "$tmp/lg$n.out")
	upmin=$(sed -n 's/.* up_min=\([0-9]*\).*/\1/p' <<<"$sum")
	kept=$(sed -n 's/.* kept_up=\([a-z]*\).*/\1/p' <<<"$sum")
	verdict=ok
	# A p99 past the last bucket prints as +Inf, no samples as NaN: both fail.
	if ! [[ $p99 =~ ^[0-9.]+$ ]] || ! awk -v p="$p99" 'BEGIN { exit !(p + 0 < 100) }'; then
		verdict="FAIL: p99 >= 100 ms"
	fi
	if [ "$kept" != true ]; then
		# Its own lateness inflates the latency: say so next to the figures.
		verdict="${verdict/#ok/not shown}; generator could not keep up ($sum)"
		tail -n 3 "$tmp/lg$n.err" | sed "s/^/        /"
	fi
	printf '%-7s %-11s %-9s %-9s %-10s %-13s %-12s %s\n' "$n" "$upmin/$n" "$p50" "$p99" "$cpu%" "$rss (peak $hwm)" \
		"$((samples / WINDOW))" "$verdict"
	if [ "$backlog" != 0 ]; then echo "        ($backlog samples arrived over 5 s old and were left out)"; fi
	[ "$verdict" = ok ] || break
	best=$n
done
if [ -n "$best" ]; then
	echo "largest N sustained with p99 < 100 ms: $best agents"
else
	echo "no N sustained with p99 < 100 ms"
fi
