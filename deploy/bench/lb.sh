#!/usr/bin/env bash
# shoal-lb next to nginx and haproxy, same machine, same run, same backend.
# Method and peer configurations: see bench-peers in the shared notes and
# the "Load balancer" section of ARCHITECTURE.md. Prints one table per
# protocol: req/s, p50, p99, proxy CPU µs/request (utime+stime over all of a
# proxy's processes / requests served), errors, ratio to the reference peer.
# The proxies take turns in BENCH_ROUNDS rounds (default 5) of the measured
# time, so load from elsewhere on a shared machine falls on all of them.
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

# BENCH_SYSCALLS=1 adds a run per proxy and protocol that counts system
# calls per request: with perf's raw_syscalls:sys_enter tracepoint when the
# kernel allows it (cheap, so the proxies behave as under the main load),
# else with strace -c -f (which slows them down; the count per request
# still holds).
SYSCALLS=${BENCH_SYSCALLS:-0}
SYSCALL_DUR=${BENCH_SYSCALL_DURATION:-5}
# BENCH_INSTRUCTIONS=1 adds user-space instructions per HTTP/1.1 request,
# counted by valgrind's callgrind (deterministic enough to compare builds;
# this machine's kernel offers no hardware counters to perf). Each proxy
# runs alone under callgrind on its own port (nginx as one process,
# master_process off), gets BENCH_INSTR_DURATION seconds of wrk -t1 -c16
# after a warm-up, with the counters zeroed in between. Kernel work is not
# counted: read it with the system-call rows.
INSTR=${BENCH_INSTRUCTIONS:-0}
INSTR_DUR=${BENCH_INSTR_DURATION:-10}
CG_NGINX=$((BASE + 40)) CG_SHOAL=$((BASE + 41))
# shoal-lb runs with Go's default GOMAXPROCS (all cores); BENCH_ONE_PROC=1
# (the default) adds rows for GOMAXPROCS=1, like-for-like with the peers'
# single worker (nginx worker_processes 1, haproxy nbthread 1).
ONEPROC=${BENCH_ONE_PROC:-1}
SHOAL1_HTTP=$((BASE + 12)) SHOAL1_GRPC=$((BASE + 13))
# shoal-lb's HTTP/1.1 engine is the event loops by default (one per P but
# one; ARCHITECTURE.md "Load balancer"). BENCH_H1_RAW=1 (the default) adds
# a row for --h1-engine raw (a goroutine per connection), and
# BENCH_H1_LOOP_PER_P=1 (the default) one with a loop on every P
# (--h1-loops = the core count): the two rows that say why the default is
# what it is.
H1RAW=${BENCH_H1_RAW:-1}
H1PERP=${BENCH_H1_LOOP_PER_P:-1}
SHOALR_HTTP=$((BASE + 14)) SHOALP_HTTP=$((BASE + 15))
# BENCH_NGINX2=1 adds a control row: nginx with worker_processes 2, to see
# what a second busy proxy thread does to the tail on this machine (the
# reference stays the one-worker nginx of the peer notes).
NGINX2=${BENCH_NGINX2:-0}
NGINX2_HTTP=$((BASE + 22))

# --- tools -------------------------------------------------------------------
missing=()
command -v nginx >/dev/null || missing+=(nginx)
command -v haproxy >/dev/null || missing+=(haproxy)
command -v wrk >/dev/null || missing+=(wrk)
if [ "$SYSCALLS" = 1 ] && ! perf stat -e raw_syscalls:sys_enter true >/dev/null 2>&1; then
	command -v strace >/dev/null || missing+=(strace)
fi
if [ "$INSTR" = 1 ]; then
	command -v valgrind >/dev/null || missing+=(valgrind)
fi
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
	kill "$(cat "$WORK/nginx2.pid" 2>/dev/null)" 2>/dev/null || true
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
if [ "$ONEPROC" = 1 ]; then
	start shoal1http env GOMAXPROCS=1 "$LB" serve --listen "127.0.0.1:$SHOAL1_HTTP" --backends "127.0.0.1:$BE_HTTP" --fleet bench --log-level warn
	start shoal1grpc env GOMAXPROCS=1 "$LB" serve --listen "127.0.0.1:$SHOAL1_GRPC" --backends "127.0.0.1:$BE_GRPC" --fleet bench --log-level warn
fi
if [ "$H1RAW" = 1 ]; then
	start shoalraw "$LB" serve --h1-engine raw --listen "127.0.0.1:$SHOALR_HTTP" --backends "127.0.0.1:$BE_HTTP" --fleet bench --log-level warn
fi
if [ "$H1PERP" = 1 ]; then
	start shoalperp "$LB" serve --h1-loops "$(getconf _NPROCESSORS_ONLN)" --listen "127.0.0.1:$SHOALP_HTTP" --backends "127.0.0.1:$BE_HTTP" --fleet bench --log-level warn
fi

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
if [ "$NGINX2" = 1 ]; then
	sed -e 's/^worker_processes 1;/worker_processes 2;/' -e "s/listen 127.0.0.1:$NGINX_HTTP;/listen 127.0.0.1:$NGINX2_HTTP;/" \
		-e "s#pid $WORK/nginx.pid;#pid $WORK/nginx2.pid;#" -e '/listen 127.0.0.1:'"$NGINX_GRPC"'/,/}/d' \
		"$WORK/nginx.conf" >"$WORK/nginx2.conf"
	start nginx2 nginx -c "$WORK/nginx2.conf" -p "$WORK/nginx" -g 'daemon off;'
fi

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
if [ "$ONEPROC" = 1 ]; then wait_port $SHOAL1_HTTP; wait_port $SHOAL1_GRPC; fi
if [ "$NGINX2" = 1 ]; then wait_port $NGINX2_HTTP; fi
if [ "$H1RAW" = 1 ]; then wait_port $SHOALR_HTTP; fi
if [ "$H1PERP" = 1 ]; then wait_port $SHOALP_HTTP; fi

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

# The measured time is split into BENCH_ROUNDS rounds, and the proxies take
# turns round by round, so a burst of load from elsewhere on the machine
# lands on all of them rather than on whichever ran at that moment. CPU
# per request is summed over the rounds (ticks ÷ requests); p50 and p99 are
# the medians of the rounds' figures.
ROUNDS=${BENCH_ROUNDS:-5}
RDUR=$(((DUR + ROUNDS - 1) / ROUNDS))

round_http() { # NAME PORT PIDVAR: one round, appended to $WORK/rounds-http
	local name=$1 port=$2 pgid before after out
	pgid=$(eval echo "\$PID_$3")
	before=$(ticks "$pgid")
	out=$(wrk -t2 -c"$CONNS" -d"${RDUR}s" --latency "http://127.0.0.1:$port/")
	after=$(ticks "$pgid")
	echo "$out" >>"$WORK/wrk-$name.txt"
	local reqs p50 p99 non2xx sock
	reqs=$(awk '/requests in/ {print $1}' <<<"$out")
	p50=$(ms "$(awk '$1=="50%" {print $2}' <<<"$out")")
	p99=$(ms "$(awk '$1=="99%" {print $2}' <<<"$out")")
	non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
	sock=$(awk '/Socket errors/ {gsub(",",""); print $4+$6+$8+$10}' <<<"$out")
	echo "$name $reqs $((after - before)) $p50 $p99 $((${non2xx:-0} + ${sock:-0}))" >>"$WORK/rounds-http"
}

round_grpc() { # NAME PORT PIDVAR: one round, appended to $WORK/rounds-grpc
	local name=$1 port=$2 pgid before after out
	pgid=$(eval echo "\$PID_$3")
	before=$(ticks "$pgid")
	out=$("$LB" loadtest --grpc --target "127.0.0.1:$port" --connections 1 --streams 64 --duration "${RDUR}s" --quiet)
	after=$(ticks "$pgid")
	echo "$out" >>"$WORK/grpc-$name.txt"
	local reqs p50 p99 errs
	reqs=$(sed -n 's/.*summary requests=\([0-9]*\).*/\1/p' <<<"$out")
	p50=$(sed -n 's/.* p50_ms=\([0-9.]*\).*/\1/p' <<<"$out")
	p99=$(sed -n 's/.* p99_ms=\([0-9.]*\).*/\1/p' <<<"$out")
	errs=$(sed -n 's/.* errors=\([0-9]*\).*/\1/p' <<<"$out")
	echo "$name $reqs $((after - before)) $p50 $p99 ${errs:-0}" >>"$WORK/rounds-grpc"
}

# summary FILE NAME: "NAME req/s p50 p99 CPU-µs/req errors" over the rounds.
summary() {
	sort -t' ' -k1,1 "$1" | awk -v name="$2" -v tck="$TCK" -v dur="$RDUR" '
		function median(a, n,   i, j, t) {
			for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] > a[j]; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
			return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
		}
		$1 == name { n++; reqs += $2; t += $3; p50[n] = $4; p99[n] = $5; errs += $6 }
		END {
			printf "%s %.0f %.2fms %.2fms %.1f %d\n", name, reqs/(n*dur), median(p50, n), median(p99, n), t*1e6/tck/reqs, errs
		}'
}

bench() { # KIND NAME:PORT:PIDVAR...: warm-ups, then the rounds in turn
	local kind=$1 x name port pv r
	shift
	for x in "$@"; do
		IFS=: read -r name port pv <<<"$x"
		if [ "$kind" = http ]; then
			wrk -t2 -c"$CONNS" -d"${WARM}s" "http://127.0.0.1:$port/" >/dev/null
		else
			"$LB" loadtest --grpc --target "127.0.0.1:$port" --connections 1 --streams 64 --duration "${WARM}s" --quiet >/dev/null
		fi
	done
	for ((r = 0; r < ROUNDS; r++)); do
		for x in "$@"; do
			IFS=: read -r name port pv <<<"$x"
			"round_$kind" "$name" "$port" "$pv"
		done
	done
	for x in "$@"; do
		IFS=: read -r name port pv <<<"$x"
		if [ "$kind" = http ]; then
			ROWS_HTTP+=("$(summary "$WORK/rounds-http" "$name")")
		else
			ROWS_GRPC+=("$(summary "$WORK/rounds-grpc" "$name")")
		fi
	done
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

# syscalls NAME PIDVAR KIND PORT: system calls per request of one proxy
# (every process and thread of it) under the protocol's load for
# SYSCALL_DUR seconds; KIND is http or grpc.
SYSCALL_ROWS=()
syscalls() {
	local name=$1 kind=$3 port=$4 pgid out reqs calls tool
	pgid=$(eval echo "\$PID_$2")
	local ts=() t
	for t in $(tids "$pgid"); do ts+=("$t"); done
	if perf stat -e raw_syscalls:sys_enter true >/dev/null 2>&1; then
		tool=perf
		local list
		list=$(IFS=,; echo "${ts[*]}")
		perf stat -x, -e raw_syscalls:sys_enter -t "$list" -o "$WORK/sys-$name-$kind.txt" -- sleep $((SYSCALL_DUR + 1)) &
	else
		tool=strace
		local args=()
		for t in "${ts[@]}"; do args+=(-p "$t"); done
		strace -c -f -o "$WORK/sys-$name-$kind.txt" "${args[@]}" 2>/dev/null &
	fi
	local mon=$!
	sleep 0.5
	if [ "$kind" = http ]; then
		out=$(wrk -t2 -c"$CONNS" -d"${SYSCALL_DUR}s" "http://127.0.0.1:$port/")
		reqs=$(awk '/requests in/ {print $1}' <<<"$out")
	else
		out=$("$LB" loadtest --grpc --target "127.0.0.1:$port" --connections 1 --streams 64 --duration "${SYSCALL_DUR}s" --quiet)
		reqs=$(sed -n 's/.*summary requests=\([0-9]*\).*/\1/p' <<<"$out")
	fi
	if [ $tool = perf ]; then
		wait $mon 2>/dev/null || true
		calls=$(awk -F, '/raw_syscalls:sys_enter/ {print $1}' "$WORK/sys-$name-$kind.txt")
	else
		kill -INT $mon
		wait $mon 2>/dev/null || true
		# strace -c columns: % time, seconds, usecs/call, calls, [errors,] syscall
		calls=$(awk '$NF=="total" {print $4}' "$WORK/sys-$name-$kind.txt")
	fi
	SYSCALL_ROWS+=("$kind $name $(awk -v c="$calls" -v n="$reqs" 'BEGIN {printf "%.2f", c/n}') $tool")
}

# instructions NAME PORT CMD...: user-space instructions per request of
# CMD under callgrind. Go's runtime gets asyncpreemptoff (callgrind
# mishandles the preemption signal) and cpu.rdtscp=off (valgrind 3.19
# cannot decode RDTSCP).
INSTR_ROWS=()
instructions() {
	local name=$1 port=$2 out reqs ir vp f
	shift 2
	GODEBUG=asyncpreemptoff=1,cpu.rdtscp=off setsid valgrind --tool=callgrind \
		--callgrind-out-file="$WORK/cg-$name.out" "$@" >"$WORK/cg-$name.log" 2>&1 &
	vp=$!
	PIDS+=("$vp")
	for _ in $(seq 300); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
		sleep 0.1
	done
	wrk -t1 -c16 -d"${WARM}s" "http://127.0.0.1:$port/" >/dev/null
	callgrind_control -z "$vp" >/dev/null 2>&1
	out=$(wrk -t1 -c16 -d"${INSTR_DUR}s" "http://127.0.0.1:$port/")
	callgrind_control -d "$vp" >/dev/null 2>&1
	reqs=$(awk '/requests in/ {print $1}' <<<"$out")
	kill -- "-$vp" 2>/dev/null || true
	wait "$vp" 2>/dev/null || true
	f=$(ls -t "$WORK/cg-$name.out".* 2>/dev/null | head -1)
	ir=$(awk '/^totals:|^summary:/ {print $2; exit}' "${f:-/dev/null}")
	INSTR_ROWS+=("$name $(awk -v a="${ir:-0}" -v n="${reqs:-0}" 'BEGIN {if (n > 0 && a > 0) printf "%.0f", a/n; else print "-"}')")
}

echo "HTTP/1.1: wrk -t2 -c$CONNS, ${WARM}s warm-up, ${DUR}s measured in $ROUNDS rounds taken in turn" >&2
set -- nginx:$NGINX_HTTP:nginx haproxy:$HAPROXY_HTTP:haproxy shoal-lb:$SHOAL_HTTP:shoalhttp
if [ "$NGINX2" = 1 ]; then set -- "$@" nginx-2w:$NGINX2_HTTP:nginx2; fi
if [ "$ONEPROC" = 1 ]; then set -- "$@" shoal-lb-1p:$SHOAL1_HTTP:shoal1http; fi
if [ "$H1RAW" = 1 ]; then set -- "$@" shoal-raw:$SHOALR_HTTP:shoalraw; fi
if [ "$H1PERP" = 1 ]; then set -- "$@" shoal-loop-np:$SHOALP_HTTP:shoalperp; fi
bench http "$@"
echo "gRPC: 1 connection x 64 streams, ${WARM}s warm-up, ${DUR}s measured in $ROUNDS rounds taken in turn" >&2
set -- nginx:$NGINX_GRPC:nginx haproxy:$HAPROXY_GRPC:haproxy shoal-lb:$SHOAL_GRPC:shoalgrpc
if [ "$ONEPROC" = 1 ]; then set -- "$@" shoal-lb-1p:$SHOAL1_GRPC:shoal1grpc; fi
bench grpc "$@"

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
	echo "system calls: ${SYSCALL_DUR}s of the same load per proxy" >&2
	syscalls nginx nginx http $NGINX_HTTP
	syscalls haproxy haproxy http $HAPROXY_HTTP
	syscalls shoal-lb shoalhttp http $SHOAL_HTTP
	if [ "$ONEPROC" = 1 ]; then syscalls shoal-lb-1p shoal1http http $SHOAL1_HTTP; fi
	if [ "$H1RAW" = 1 ]; then syscalls shoal-raw shoalraw http $SHOALR_HTTP; fi
	if [ "$H1PERP" = 1 ]; then syscalls shoal-loop-np shoalperp http $SHOALP_HTTP; fi
	syscalls nginx nginx grpc $NGINX_GRPC
	syscalls haproxy haproxy grpc $HAPROXY_GRPC
	syscalls shoal-lb shoalgrpc grpc $SHOAL_GRPC
	if [ "$ONEPROC" = 1 ]; then syscalls shoal-lb-1p shoal1grpc grpc $SHOAL1_GRPC; fi
fi
if [ "$INSTR" = 1 ]; then
	echo "instructions: callgrind, wrk -t1 -c16, ${INSTR_DUR}s per proxy" >&2
	cat >"$WORK/nginx-cg.conf" <<CONF
worker_processes 1;
master_process off;
pid $WORK/nginx-cg.pid;
error_log $WORK/nginx-cg-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body;
  proxy_temp_path $WORK/nginx/proxy;
  fastcgi_temp_path $WORK/nginx/fastcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi;
  scgi_temp_path $WORK/nginx/scgi;
  upstream be { server 127.0.0.1:$BE_HTTP; keepalive 128; }
  server { listen 127.0.0.1:$CG_NGINX;
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection ""; } }
}
CONF
	instructions nginx $CG_NGINX nginx -c "$WORK/nginx-cg.conf" -p "$WORK/nginx" -g 'daemon off;'
	instructions shoal-lb $CG_SHOAL "$LB" serve --listen "127.0.0.1:$CG_SHOAL" --backends "127.0.0.1:$BE_HTTP" --fleet bench --log-level warn
fi
table "HTTP/1.1" nginx "${ROWS_HTTP[@]}"
table "gRPC" haproxy "${ROWS_GRPC[@]}"
if [ "$SYSCALLS" = 1 ]; then
	for kind in http grpc; do
		ref=nginx
		[ $kind = grpc ] && ref=haproxy
		echo
		echo "$kind system calls per request (ratio to $ref's)"
		refc=$(printf '%s\n' "${SYSCALL_ROWS[@]}" | awk -v k=$kind -v r=$ref '$1==k && $2==r {print $3}')
		for row in "${SYSCALL_ROWS[@]}"; do
			# shellcheck disable=SC2086
			set -- $row
			[ "$1" = $kind ] || continue
			printf '%-14s %8s %7s  (%s)\n' "$2" "$3" "$(awk -v a="$3" -v b="$refc" 'BEGIN {printf "%.2f", a/b}')" "$4"
		done
	done
fi
if [ "$INSTR" = 1 ]; then
	echo
	echo "HTTP/1.1 user-space instructions per request (callgrind; ratio to nginx's)"
	refi=$(printf '%s\n' "${INSTR_ROWS[@]}" | awk '$1=="nginx" {print $2}')
	for row in "${INSTR_ROWS[@]}"; do
		# shellcheck disable=SC2086
		set -- $row
		printf '%-14s %8s %7s\n' "$1" "$2" "$(awk -v a="$2" -v b="$refi" 'BEGIN {if (b > 0 && a > 0) printf "%.2f", a/b; else print "-"}')"
	done
fi
