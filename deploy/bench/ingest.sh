#!/usr/bin/env bash
# Ingest capacity: N simulated agents (shoal-loadgen) stream one sample
# of 10 metrics a second each to a 3-node loopback coordinator cluster,
# spread over all three nodes (followers forward to the leader). For each N
# it reports the leader's sample-to-aggregate latency (p50/p99 of
# shoal_ingest_sample_latency_seconds over the measured window), the
# leader's CPU (% of one core) and RSS, and stops at the first N that misses
# p99 < 100 ms or that the generator cannot deliver. Each N runs
# INGEST_RUNS times (3) and the run with the median p99 is shown.
#
# Mutual TLS is on by default, as in production: the script makes a CA and
# server certificates with `shoal-coordinator tls ca create` / `tls cert
# create`, bootstraps ACLs, and every simulated agent presents its own ECDSA
# P-256 agent certificate naming its instance id over its own connection
# (the generator signs them with the CA key: see deploy/bench/loadgen).
# INGEST_TLS=0 runs the cluster --insecure (plaintext, no ACLs) with the
# generator's 500 streams per connection, the earlier figure's shape.
#   INGEST_AGENTS="500 1000" INGEST_WARMUP=10 INGEST_WINDOW=20 INGEST_RUNS=1 deploy/bench/ingest.sh
# INGEST_KEEP=1 keeps the nodes' and the generator's logs.
# The generator runs on the same machine and competes with the cluster for
# its cores: the figures are a floor for a cluster on its own machines.
set -euo pipefail
cd "$(dirname "$0")/../.."
AGENTS=${INGEST_AGENTS:-"500 1000 2000 5000 6750 7500 10000"}
RUNS=${INGEST_RUNS:-3}
TLS=${INGEST_TLS:-1}
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
ctl() { "$BIN/shoal-coordinator" --timeout 5s "$@"; }
sec=(--insecure)
lgsec=()
mode="plaintext (--insecure, 500 streams per connection)"
if [ "$TLS" = 1 ]; then
	pki=$tmp/pki
	mkdir -p "$pki"
	ctl tls ca create --out "$pki" >/dev/null
	for i in 1 2 3; do
		ctl tls cert create --ca "$pki/shoal-ca.pem" --ca-key "$pki/shoal-ca-key.pem" --role server --name "n$i" --ip 127.0.0.1 --out "$pki" >/dev/null
	done
	ctl tls cert create --ca "$pki/shoal-ca.pem" --ca-key "$pki/shoal-ca-key.pem" --role operator --name bench --out "$pki" >/dev/null
	export SHOAL_CACERT=$pki/shoal-ca.pem SHOAL_CLIENT_CERT=$pki/shoal-operator-bench.pem SHOAL_CLIENT_KEY=$pki/shoal-operator-bench-key.pem
	lgsec=(--ca-cert "$pki/shoal-ca.pem" --ca-key "$pki/shoal-ca-key.pem")
	mode="mutual TLS 1.3, one ECDSA P-256 agent certificate and connection per agent"
fi
for i in 0 1 2; do
	if [ "$TLS" = 1 ]; then
		sec=(--ca-cert "$pki/shoal-ca.pem" --cert "$pki/shoal-server-n$((i + 1)).pem" --key "$pki/shoal-server-n$((i + 1))-key.pem")
	fi
	join=(--bootstrap)
	if [ "$i" -gt 0 ]; then join=(--join "${rpc[0]}"); fi
	setsid "$BIN/shoal-coordinator" serve --node-id "n$((i + 1))" --data-dir "$tmp/n$((i + 1))" \
		--raft-addr "${raft[i]}" --rpc-addr "${rpc[i]}" --http-addr "${http[i]}" \
		"${join[@]}" "${raftflags[@]}" "${sec[@]}" >"$tmp/n$((i + 1)).log" 2>&1 &
	pid[i]=$!
	pids+=("$!")
done

# ACLs are on with TLS: the first admin token, once the cluster has a leader.
if [ "$TLS" = 1 ]; then
	for _ in $(seq 1 150); do
		if tok=$(ctl acl bootstrap -o json --address "${rpc[0]}" 2>/dev/null); then break; fi
		sleep 0.2
	done
	SHOAL_TOKEN=$(sed -n 's/.*"secret": *"\([^"]*\)".*/\1/p' <<<"$tok")
	if [ -z "$SHOAL_TOKEN" ]; then
		echo "ingest.sh: acl bootstrap failed; logs:" >&2
		tail -n 20 "$tmp"/n*.log >&2
		exit 1
	fi
	export SHOAL_TOKEN
fi
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

echo "ingest capacity, $mode: 3-node loopback cluster, leader $leader; agents at 1 Hz, 10 metrics each, spread over all nodes"
echo "(median p99 of $RUNS runs per N; $(nproc) CPUs shared with the load generator; ${WARMUP} s warm-up, ${WINDOW} s measured per row; load $(cut -d' ' -f1 /proc/loadavg))"

# find_leader sets leader and li (its index) from node 1's view.
find_leader() {
	local st
	for _ in $(seq 1 100); do
		if st=$(ctl status -o json --address "${rpc[0]}" 2>/dev/null); then
			leader=$(sed -n 's/.*"leader_id": *"\([^"]*\)".*/\1/p' <<<"$st" | head -1)
			if [ -n "$leader" ]; then
				li=$((${leader#n} - 1))
				return 0
			fi
		fi
		sleep 0.2
	done
	echo "ingest.sh: no leader within 20 s" >&2
	exit 1
}

# run_one N R: one run of N agents; appends "p99key|row|verdict|note" to
# $tmp/rows$N, where p99key sorts the runs (+Inf and NaN last). The
# figures are the leader's; a run in which leadership moved (a loaded
# machine can miss a heartbeat) is run again, once.
run_one() {
	local n=$1 r=$2 attempt=${3:-1} before
	find_leader
	before=$leader
	# Each run reuses the earlier runs' instance ids and adds new ones.
	setsid "$BIN/shoal-loadgen" --coordinator "$coords" --fleet "$FLEET" --agents "$n" "${lgsec[@]}" \
		--interval 1s --metrics 10 --ramp 5s --warmup "${WARMUP}s" --measure "${WINDOW}s" --duration "$((WARMUP + WINDOW + 2))s" \
		>"$tmp/lg$n.$r.out" 2>"$tmp/lg$n.$r.err" &
	local lg=$!
	pids+=("$lg")
	sleep "$WARMUP"
	"$STAT" snap -pid "${pid[li]}" -url "http://${http[li]}/metrics" >"$tmp/a$n.$r.json"
	sleep "$WINDOW"
	"$STAT" snap -pid "${pid[li]}" -url "http://${http[li]}/metrics" >"$tmp/b$n.$r.json"
	wait "$lg" || { echo "ingest.sh: loadgen failed:" >&2; tail -n 5 "$tmp/lg$n.$r.err" >&2; exit 1; }
	find_leader
	if [ "$leader" != "$before" ]; then
		if [ "$attempt" = 1 ]; then
			echo "        (N=$n run $r: leadership moved from $before to $leader; running it again)" >&2
			run_one "$n" "$r" 2
			return
		fi
		echo "        (N=$n run $r: leadership moved again, from $before to $leader; figures are $before's)" >&2
		li=$((${before#n} - 1))
	fi
	local samples backlog p50 p99 cpu rss hwm
	read -r samples backlog p50 p99 cpu rss hwm < <("$STAT" diff "$tmp/a$n.$r.json" "$tmp/b$n.$r.json")
	local sum upmin kept verdict=ok note= key=999999
	sum=$(cat "$tmp/lg$n.$r.out")
	upmin=$(sed -n 's/.* up_min=\([0-9]*\).*/\1/p' <<<"$sum")
	kept=$(sed -n 's/.* kept_up=\([a-z]*\).*/\1/p' <<<"$sum")
	# A p99 past the last bucket prints as +Inf, no samples as NaN: both fail.
	if [[ $p99 =~ ^[0-9.]+$ ]]; then key=$p99; fi
	if ! [[ $p99 =~ ^[0-9.]+$ ]] || ! awk -v p="$p99" 'BEGIN { exit !(p + 0 < 100) }'; then
		verdict="FAIL: p99 >= 100 ms"
	fi
	if [ "$kept" != true ]; then
		# Its own lateness inflates the latency: say so next to the figures.
		verdict="${verdict/#ok/not shown}; generator could not keep up ($sum)"
	fi
	if [ "$backlog" != 0 ]; then note="($backlog samples arrived over 5 s old and were left out)"; fi
	printf '%s|%-7s %-11s %-9s %-9s %-10s %-13s %-12s|%s|%s\n' "$key" "$n" "$upmin/$n" "$p50" "$p99" "$cpu%" "$rss (peak $hwm)" \
		"$((samples / WINDOW))" "$verdict" "$note" >>"$tmp/rows$n"
}

printf '%-7s %-11s %-9s %-9s %-10s %-13s %-12s %-12s %s\n' agents streams_up p50_ms p99_ms leader_cpu leader_rss_mb samples/s p99_runs verdict
best=
for n in $AGENTS; do
	for r in $(seq 1 "$RUNS"); do run_one "$n" "$r"; done
	# The median run by p99 (the middle one of 3; the lower middle of an even count).
	mid=$(((RUNS + 1) / 2))
	IFS='|' read -r _ row verdict note < <(sort -t'|' -k1,1g "$tmp/rows$n" | sed -n "${mid}p")
	runs=$(sort -t'|' -k1,1g "$tmp/rows$n" | cut -d'|' -f1 | sed 's/^999999$/inf/' | paste -sd/)
	printf '%s %-12s %s\n' "$row" "$runs" "$verdict"
	if [ -n "$note" ]; then echo "        $note"; fi
	[ "$verdict" = ok ] || break
	best=$n
done
if [ -n "$best" ]; then
	echo "largest N sustained with p99 < 100 ms (median of $RUNS runs): $best agents"
else
	echo "no N sustained with p99 < 100 ms"
fi
