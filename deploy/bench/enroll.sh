#!/usr/bin/env bash
# Enrollment throughput: ENROLL_AGENTS (1000) local-cloud instances boot at
# once and their agents enroll the way shoal-agent does (IMDSv2 identity
# document + signature, a fresh ECDSA P-256 key and CSR, Enroll over
# server-authenticated TLS from the instance's own 127.x address, then a
# Connect stream with the issued certificate), against a 3-node mTLS
# cluster with enrollment on. It reports the time until all stream and the
# AWS calls the coordinators made meanwhile, counted by a proxy in front of
# the local cloud (DescribeAutoScalingInstances is enrollment's lookup).
#   ENROLL_AGENTS=200 deploy/bench/enroll.sh      ENROLL_KEEP=1 keeps the logs
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${ENROLL_AGENTS:-1000}
FLEET=enroll
GROUP=shoal-enroll

make --no-print-directory build >/dev/null
BIN=$PWD/bin
tmp=$(mktemp -d /tmp/shoal-enroll-bench.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
	sleep 1
	for p in "${pids[@]}"; do kill -KILL -- "-$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ -n "${ENROLL_KEEP:-}" ]; then echo "enroll.sh: logs kept in $tmp" >&2; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

go build -o "$tmp/ingeststat" ./deploy/bench/ingeststat
go build -o "$tmp/enrollbench" ./deploy/bench/cmd/shoal-enrollbench
mapfile -t port < <("$tmp/ingeststat" ports 11)
cloud=http://127.0.0.1:${port[9]}
proxy=127.0.0.1:${port[10]}

# The local cloud hands out a /16 of loopback addresses, one per instance.
setsid "$BIN/shoal-localcloud" serve --addr "127.0.0.1:${port[9]}" --instance-ip-prefix 127.42 \
	--boot-delay 0s --iid-cert-out "$tmp/us-east-1-localcloud.pem" --log-level warn >"$tmp/cloud.log" 2>&1 &
pids+=("$!")
setsid "$tmp/enrollbench" proxy --listen "$proxy" --upstream "$cloud" >"$tmp/proxy.log" 2>&1 &
pids+=("$!")
for _ in $(seq 1 100); do
	if curl -fsS "$cloud/_localcloud/health" >/dev/null 2>&1 && [ -s "$tmp/us-east-1-localcloud.pem" ]; then break; fi
	sleep 0.1
done
"$tmp/enrollbench" setup --cloud "$cloud" --group "$GROUP" --instances "$N" --timeout 10m

ctl() { "$BIN/shoal-coordinator" --timeout 10s "$@"; }
pki=$tmp/pki
mkdir -p "$pki"
ctl tls ca create --out "$pki" >/dev/null
for i in 1 2 3; do
	ctl tls cert create --ca "$pki/shoal-ca.pem" --ca-key "$pki/shoal-ca-key.pem" --role server --name "n$i" --ip 127.0.0.1 --out "$pki" >/dev/null
done
ctl tls cert create --ca "$pki/shoal-ca.pem" --ca-key "$pki/shoal-ca-key.pem" --role operator --name bench --out "$pki" >/dev/null
export SHOAL_CACERT=$pki/shoal-ca.pem SHOAL_CLIENT_CERT=$pki/shoal-operator-bench.pem SHOAL_CLIENT_KEY=$pki/shoal-operator-bench-key.pem

raft=() rpc=() http=()
for i in 0 1 2; do
	raft[i]=127.0.0.1:${port[3*i]}
	rpc[i]=127.0.0.1:${port[3*i+1]}
	http[i]=127.0.0.1:${port[3*i+2]}
done
for i in 0 1 2; do
	join=(--bootstrap)
	if [ "$i" -gt 0 ]; then join=(--join "${rpc[0]}"); fi
	AWS_ENDPOINT_URL=http://$proxy AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench \
		setsid "$BIN/shoal-coordinator" serve --node-id "n$((i + 1))" --data-dir "$tmp/n$((i + 1))" \
		--raft-addr "${raft[i]}" --rpc-addr "${rpc[i]}" --http-addr "${http[i]}" "${join[@]}" \
		--raft-heartbeat-timeout 1s --raft-election-timeout 1s --raft-leader-lease-timeout 500ms --log-level warn \
		--ca-cert "$pki/shoal-ca.pem" --cert "$pki/shoal-server-n$((i + 1)).pem" --key "$pki/shoal-server-n$((i + 1))-key.pem" \
		--ca-key "$pki/shoal-ca-key.pem" --iid-trust "$tmp/us-east-1-localcloud.pem" >"$tmp/n$((i + 1)).log" 2>&1 &
	pids+=("$!")
done
tok=
for _ in $(seq 1 150); do
	if tok=$(ctl acl bootstrap -o json --address "${rpc[0]}" 2>/dev/null); then break; fi
	sleep 0.2
done
SHOAL_TOKEN=$(sed -n 's/.*"secret": *"\([^"]*\)".*/\1/p' <<<"$tok")
if [ -z "$SHOAL_TOKEN" ]; then
	echo "enroll.sh: acl bootstrap failed; logs:" >&2
	tail -n 20 "$tmp"/n*.log >&2
	exit 1
fi
export SHOAL_TOKEN
for _ in $(seq 1 150); do
	st=$(ctl status -o json --address "${rpc[0]}" 2>/dev/null || true)
	[ "$(grep -o '"voter"' <<<"$st" | wc -l)" -ge 3 ] && break
	sleep 0.2
done
ctl fleet create "$FLEET" --asg "$GROUP" --min 0 --max 100000 --address "${rpc[0]}" >/dev/null
for i in 0 1 2; do
	for _ in $(seq 1 50); do
		ctl fleet list --stale --address "${rpc[i]}" 2>/dev/null | grep -q "^$FLEET " && break
		sleep 0.2
	done
done
coords=$(IFS=,; echo "${rpc[*]}")
echo "enrollment: $N agents enroll at once against a 3-node mTLS loopback cluster on the local cloud ($(nproc) CPUs shared; load $(cut -d' ' -f1 /proc/loadavg))"
sum=$("$tmp/enrollbench" run --cloud "$cloud" --counts "http://$proxy/_enrollbench/counts" --coordinator "$coords" \
	--ca-cert "$pki/shoal-ca.pem" --fleet "$FLEET" --group "$GROUP" --instances "$N" 2>"$tmp/run.err") || {
	echo "enroll.sh: driver failed:" >&2
	tail -n 5 "$tmp/run.err" >&2
	exit 1
}
val() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $sum"; }
printf '%-7s %-10s %-7s %-8s %-15s %-15s %-15s %-16s %s\n' agents streaming failed retries all_streaming_s enroll_p50/p99 stream_p50/p99 DescribeASGInst aws_calls_total
printf '%-7s %-10s %-7s %-8s %-15s %-15s %-15s %-16s %s\n' "$N" "$(val streaming)" "$(val failed)" "$(val retries)" \
	"$(awk -v m="$(val all_streaming_ms)" 'BEGIN { printf "%.1f", m / 1000 }')" "$(val enroll_p50_ms)/$(val enroll_p99_ms) ms" \
	"$(val stream_p50_ms)/$(val stream_p99_ms) ms" "$(val describe_asg_instances_calls)" "$(val aws_calls)"
echo "AWS calls during the run by operation: $(val aws_calls_by_op)"
if [ "$(val failed)" != 0 ]; then sed 's/^/  /' "$tmp/run.err" | head -5; exit 1; fi
