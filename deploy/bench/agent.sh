#!/usr/bin/env bash
# Agent footprint: shoal-agent at a 1 s interval for DURATION seconds (60),
# streaming into the real ingest code (a one-node sink built from
# coordinator/internal/ingest's TestBenchSink), next to
# prometheus-node-exporter (Debian package, installed if missing) scraped
# every 1 s. Prints CPU % of one core and peak RSS of each.
# Goal: shoal-agent <= 1 % of a core and <= 20 MB, and below node_exporter.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION=${DURATION:-60}
SINK_ADDR=${SINK_ADDR:-127.0.0.1:17946}
NE_ADDR=${NE_ADDR:-127.0.0.1:19117}
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

if ! command -v prometheus-node-exporter >/dev/null; then
	echo "installing prometheus-node-exporter (apt)..." >&2
	(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus-node-exporter) >/dev/null
fi
go build -o "$work/shoal-agent" ./agent/cmd/shoal-agent
go test -c -o "$work/ingest.test" ./coordinator/internal/ingest

ticks=$(getconf CLK_TCK)
# cpu_ticks PID: utime+stime of the process, in clock ticks.
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
peak_rss_mb() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
# Anonymous memory (heap, stacks) at the end; the rest of RSS is the
# binary's code pages, shared with any other copy of the same binary.
anon_mb() { awk '/RssAnon/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }

SHOAL_BENCH_SINK_ADDR=$SINK_ADDR SHOAL_BENCH_SINK_FOR=$((DURATION + 6))s \
	"$work/ingest.test" -test.run '^TestBenchSink$' -test.v >"$work/sink.log" 2>&1 &
sink=$!
pids+=("$sink")
for _ in $(seq 50); do (exec 3<>"/dev/tcp/${SINK_ADDR%:*}/${SINK_ADDR#*:}") 2>/dev/null && break; sleep 0.1; done

# The sink is a plaintext test server, so the agent runs --insecure: this
# measures collection and streaming, not the TLS handshake (once per stream).
"$work/shoal-agent" --instance-id i-0000000000000b01 --fleet web --coordinator "$SINK_ADDR" --interval 1s --insecure --log-level warn &
agent=$!
pids+=("$agent")
prometheus-node-exporter --web.listen-address="$NE_ADDR" >"$work/ne.log" 2>&1 &
ne=$!
pids+=("$ne")
sleep 2 # both started and connected; not part of the measurement

a0=$(cpu_ticks "$agent"); n0=$(cpu_ticks "$ne"); t0=$(date +%s.%N)
for _ in $(seq "$DURATION"); do
	curl -fsS "http://$NE_ADDR/metrics" >/dev/null || echo "node_exporter scrape failed" >&2
	sleep 1
done
a1=$(cpu_ticks "$agent"); n1=$(cpu_ticks "$ne"); t1=$(date +%s.%N)
arss=$(peak_rss_mb "$agent"); nrss=$(peak_rss_mb "$ne")
aanon=$(anon_mb "$agent"); nanon=$(anon_mb "$ne")
kill "$agent" "$ne"
# The sink checks, when its time is up, that the agent's samples arrived.
if ! wait "$sink"; then
	echo "the agent's samples did not reach the sink:" >&2
	cat "$work/sink.log" >&2
	exit 1
fi

pct() { awk -v d="$1" -v t="$ticks" -v s="$2" 'BEGIN {printf "%.2f", 100 * d / t / s}'; }
wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')
printf '\nAgent footprint over %s s at a 1 s interval (%s)\n' "$DURATION" "$(nproc) CPUs"
printf '%-26s %12s %14s %14s\n' process "cpu % core" "peak RSS MB" "anon RSS MB"
printf '%-26s %12s %14s %14s\n' "shoal-agent" "$(pct $((a1 - a0)) "$wall")" "$arss" "$aanon"
printf '%-26s %12s %14s %14s\n' "node_exporter (1 s scrape)" "$(pct $((n1 - n0)) "$wall")" "$nrss" "$nanon"
