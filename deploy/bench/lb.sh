#!/usr/bin/env bash
# shoal-lb next to nginx and haproxy, same machine, same run, same backend.
# Method and peer configurations: see bench-peers in the shared notes and
# the "Load balancer" section of ARCHITECTURE.md. Prints one table per
# protocol: req/s, p50, p99, proxy CPU µs/request (utime+stime over all of a
# proxy's processes / requests served), errors, ratio to the reference peer.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
WARM=${BENCH_WARMUP:-2}
DUR=${BENCH_DURATION:-10}
CONNS=${BENCH_CONNECTIONS:-64}
BASE=${BENCH_PORT_BASE:-18000}
BE_HTTP=$((BASE + 1)) BE_GRPC=$((BASE + 2))
SHOAL_HTTP=$((BASE + 10)) SHOAL_GRPC=$((BASE + 11))
NGINX_HTTP=$((BASE + 20)) NGINX_GRPC=$((BASE + 21))
HAPROXY_HTTP=$((BASE + 30)) HAPROXY_GRPC=$((BASE + 31))

# BENCH_SYSCALLS=1 adds a run per HTTP/1.1 proxy under strace -c -f and
# prints system calls per request (needs strace).
SYSCALLS=${BENCH_SYSCALLS:-0}
SYSCALL_DUR=${BENCH_SYSCALL_DURATION:-5}

# --- tools -------------------------------------------------------------------
missing=()
command -v nginx >/dev/null || missing+=(nginx)
command -v haproxy >/dev/null || missing+=(haproxy)
command -v wrk >/dev/null || missing+=(wrk)
if [ "$SYSCALLS" = 1 ]; then command -v strace >/dev/null || missing+=(strace); fi
if ((${#missing[@]})); then
	echo "installing ${missing[*]} with apt-get" >&2
	apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

WORK=$(mktemp -d /tmp/shoal-bench-lb.XXXXXX)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null || true; done
	kill "$(cat "$WORK/nginx.pid" 2>/dev/null)" 2>/dev/null || true
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

echo "building shoal-lb and bench-backend" >&2
(cd "$ROOT" && go build -o "$WORK/shoal-lb" ./lb/cmd/shoal-lb && go build -o "$WORK/bench-backend" ./deploy/bench/cmd/bench-backend)
LB=$WORK/shoal-lb

start() { # start NAME CMD... : in its own process group, logs in $WORK/NAME.log
	local name=$1
	shift
	setsid "$@" >"$WORK/$name.log" 2>&1 &
	PIDS+=($!)
	eval "PID_$name=$!"
}

wait_port() {
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "port $1 did not open" >&2
	return 1
}

# --- backend and proxies ------------------------------------------------------
start backend "$WORK/bench-backend" --http "127.0.0.1:$BE_HTTP" --grpc "127.0.0.1:$BE_GRPC" --name be1
wait_port $BE_HTTP
wait_port $BE_GRPC

start shoalhttp "$LB" serve --listen "127.0.0.1:$SHOAL_HTTP" --backends "127.0.0.1:$BE_HTTP" --fleet bench --log-level warn
start shoalgrpc "$LB" serve --listen "127.0.0.1:$SHOAL_GRPC" --backends "127.0.0.1:$BE_GRPC" --fleet bench --log-level warn

mkdir -p "$WORK/nginx"
cat >"$WORK/nginx.conf" <<CONF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  upstream be     { server 127.0.0.1:$BE_HTTP; keepalive 128; }
  upstream grpcbe { server 127.0.0.1:$BE_GRPC; keepalive 128; }
  server { listen 127.0.0.1:$NGINX_HTTP;
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; } }
  server { listen 127.0.0.1:$NGINX_GRPC http2; keepalive_requests 1000000;
    location / { grpc_pass grpc://grpcbe; } }
}
CONF
start nginx nginx -c "$WORK/nginx.conf" -p "$WORK/nginx" -g 'daemon off;'

cat >"$WORK/haproxy.cfg" <<CONF
global
  nbthread 1
  maxconn 4000
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
frontend fe
  bind 127.0.0.1:$HAPROXY_HTTP
  default_backend be
backend be
  http-reuse always
  server s1 127.0.0.1:$BE_HTTP maxconn 1000
frontend fegrpc
  bind 127.0.0.1:$HAPROXY_GRPC proto h2
  default_backend begrpc
backend begrpc
  server g1 127.0.0.1:$BE_GRPC proto h2
CONF
start haproxy haproxy -db -f "$WORK/haproxy.cfg"

for p in $SHOAL_HTTP $SHOAL_GRPC $NGINX_HTTP $NGINX_GRPC $HAPROXY_HTTP $HAPROXY_GRPC; do wait_port "$p"; done

# --- measuring ----------------------------------------------------------------
TCK=$(getconf CLK_TCK)

# ticks PID: utime+stime of PID and every process in its group (nginx master
# and workers, haproxy, shoal-lb).
ticks() {
	local pgid=$1 sum=0 f
	for f in /proc/[0-9]*/stat; do
		local line
		line=$(cat "$f" 2>/dev/null) || continue
		# fields after the ")" of comm: state=3 ppid=4 pgrp=5 ... utime=14 stime=15
		local rest=${line##*) }
		# shellcheck disable=SC2086
		set -- $rest
		[ "$3" = "$pgid" ] || continue
		sum=$((sum + ${12} + ${13}))
	done
	echo "$sum"
}

ROWS_HTTP=()
ROWS_GRPC=()

bench_http() { # NAME PORT
	local name=$1 port=$2 pgid
	pgid=$(eval echo "\$PID_$3")
	wrk -t2 -c"$CONNS" -d"${WARM}s" "http://127.0.0.1:$port/" >/dev/null
	local before after out
	before=$(ticks "$pgid")
	out=$(wrk -t2 -c"$CONNS" -d"${DUR}s" --latency "http://127.0.0.1:$port/")
	after=$(ticks "$pgid")
	echo "$out" >"$WORK/wrk-$name.txt"
	local reqs rps p50 p99 errs non2xx sock
	reqs=$(awk '/requests in/ {print $1}' <<<"$out")
	rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
	p50=$(awk '$1=="50%" {print $2}' <<<"$out")
	p99=$(awk '$1=="99%" {print $2}' <<<"$out")
	non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
	sock=$(awk '/Socket errors/ {gsub(",",""); print $4+$6+$8+$10}' <<<"$out")
	errs=$((${non2xx:-0} + ${sock:-0}))
	local us
	us=$(awk -v t=$((after - before)) -v tck="$TCK" -v n="$reqs" 'BEGIN {printf "%.1f", t*1e6/tck/n}')
	ROWS_HTTP+=("$name $rps $p50 $p99 $us $errs")
}

bench_grpc() { # NAME PORT PIDVAR
	local name=$1 port=$2 pgid
	pgid=$(eval echo "\$PID_$3")
	"$LB" loadtest --grpc --target "127.0.0.1:$port" --connections 1 --streams 64 --duration "${WARM}s" --quiet >/dev/null
	local before after out
	before=$(ticks "$pgid")
	out=$("$LB" loadtest --grpc --target "127.0.0.1:$port" --connections 1 --streams 64 --duration "${DUR}s" --quiet)
	after=$(ticks "$pgid")
	echo "$out" >"$WORK/grpc-$name.txt"
	local reqs rps p50 p99 errs us
	reqs=$(sed -n 's/.*summary requests=\([0-9]*\).*/\1/p' <<<"$out")
	rps=$(sed -n 's/.* rps=\([0-9.]*\).*/\1/p' <<<"$out")
	p50=$(sed -n 's/.* p50_ms=\([0-9.]*\).*/\1/p' <<<"$out")ms
	p99=$(sed -n 's/.* p99_ms=\([0-9.]*\).*/\1/p' <<<"$out")ms
	errs=$(sed -n 's/.* errors=\([0-9]*\).*/\1/p' <<<"$out")
	us=$(awk -v t=$((after - before)) -v tck="$TCK" -v n="$reqs" 'BEGIN {printf "%.1f", t*1e6/tck/n}')
	ROWS_GRPC+=("$name $rps $p50 $p99 $us $errs")
}

# tids PGID: every thread of every process in the group (strace -f only
# follows threads created after it attached).
tids() {
	local pgid=$1 f
	for f in /proc/[0-9]*/stat; do
		local line rest pid
		line=$(cat "$f" 2>/dev/null) || continue
		rest=${line##*) }
		# shellcheck disable=SC2086
		set -- $rest
		[ "$3" = "$pgid" ] || continue
		pid=${f#/proc/}
		pid=${pid%/stat}
		ls "/proc/$pid/task"
	done
}

# syscalls_http NAME PORT PIDVAR: system calls per request under the same
# wrk load, counted with strace -c -f on every process of the proxy. strace
# slows the proxy down, so this run's req/s mean nothing; the count per
# request does not depend on speed, and is steadier than CPU time on a
# shared machine.
SYSCALL_ROWS=()
syscalls_http() {
	local name=$1 port=$2 pgid args=() p
	pgid=$(eval echo "\$PID_$3")
	for p in $(tids "$pgid"); do args+=(-p "$p"); done
	strace -c -f -o "$WORK/strace-$name.txt" "${args[@]}" 2>/dev/null &
	local st=$!
	sleep 1 # strace attaches
	local out reqs calls
	out=$(wrk -t2 -c"$CONNS" -d"${SYSCALL_DUR}s" "http://127.0.0.1:$port/")
	kill -INT $st
	wait $st 2>/dev/null || true
	reqs=$(awk '/requests in/ {print $1}' <<<"$out")
	# strace -c columns: % time, seconds, usecs/call, calls, [errors,] syscall
	calls=$(awk '$NF=="total" {print $4}' "$WORK/strace-$name.txt")
	SYSCALL_ROWS+=("$name $(awk -v c="$calls" -v n="$reqs" 'BEGIN {printf "%.2f", c/n}')")
	grep -E '^ *[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9]+' "$WORK/strace-$name.txt" | sort -k4 -n -r | head -6 |
		awk -v n="$reqs" -v who="$name" '{printf "  %-12s %-16s %.2f/req\n", who, $NF, $4/n}' >&2
}

echo "HTTP/1.1: wrk -t2 -c$CONNS, ${WARM}s warm-up, ${DUR}s measured" >&2
bench_http nginx $NGINX_HTTP nginx
bench_http haproxy $HAPROXY_HTTP haproxy
bench_http shoal-lb $SHOAL_HTTP shoalhttp
echo "gRPC: 1 connection x 64 streams, ${WARM}s warm-up, ${DUR}s measured" >&2
bench_grpc nginx $NGINX_GRPC nginx
bench_grpc haproxy $HAPROXY_GRPC haproxy
bench_grpc shoal-lb $SHOAL_GRPC shoalgrpc

# ms DURATION: wrk's and loadtest's latencies ("850.00us", "1.23ms", "1.01s")
# in milliseconds.
ms() {
	awk -v d="$1" 'BEGIN {
		v = d + 0
		if (d ~ /us$/) v /= 1000
		else if (d ~ /ms$/) v += 0
		else if (d ~ /s$/) v *= 1000
		printf "%.3f", v
	}'
}

table() { # TITLE REF rows...
	local title=$1 ref=$2
	shift 2
	local refus refp99
	refus=$(printf '%s\n' "$@" | awk -v r="$ref" '$1==r {print $5}')
	refp99=$(ms "$(printf '%s\n' "$@" | awk -v r="$ref" '$1==r {print $4}')")
	echo
	echo "$title (ratio = CPU µs/req ÷ $ref's; p99 ratio = p99 ÷ $ref's)"
	printf '%-14s %10s %10s %10s %12s %8s %7s %9s\n' proxy req/s p50 p99 "CPU µs/req" errors ratio "p99 ratio"
	for row in "$@"; do
		# shellcheck disable=SC2086
		set -- $row
		printf '%-14s %10s %10s %10s %12s %8s %7s %9s\n' "$1" "$2" "$3" "$4" "$5" "$6" \
			"$(awk -v a="$5" -v b="$refus" 'BEGIN {printf "%.2f", a/b}')" \
			"$(awk -v a="$(ms "$4")" -v b="$refp99" 'BEGIN {printf "%.2f", a/b}')"
	done
}
if [ "$SYSCALLS" = 1 ]; then
	echo "HTTP/1.1 system calls: strace -c -f during wrk -t2 -c$CONNS -d${SYSCALL_DUR}s" >&2
	syscalls_http nginx $NGINX_HTTP nginx
	syscalls_http haproxy $HAPROXY_HTTP haproxy
	syscalls_http shoal-lb $SHOAL_HTTP shoalhttp
fi
table "HTTP/1.1" nginx "${ROWS_HTTP[@]}"
table "gRPC" haproxy "${ROWS_GRPC[@]}"
if [ "$SYSCALLS" = 1 ]; then
	echo
	echo "HTTP/1.1 system calls per request (strace -c -f; ratio to nginx)"
	ref=$(printf '%s\n' "${SYSCALL_ROWS[@]}" | awk '$1=="nginx" {print $2}')
	for row in "${SYSCALL_ROWS[@]}"; do
		# shellcheck disable=SC2086
		set -- $row
		printf '%-14s %8s %7s\n' "$1" "$2" "$(awk -v a="$2" -v b="$ref" 'BEGIN {printf "%.2f", a/b}')"
	done
fi
