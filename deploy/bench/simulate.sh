#!/usr/bin/env bash
# Prints the elasticity scorecard (Shoal vs AWS target tracking, AWS target
# tracking on a 10 s high-resolution metric, and the Kubernetes HPA) for each
# trace in deploy/traces, with the tuned example policy
# deploy/traces/policy.json as it is, its sustain (0.02) included: the
# README's "Shoal (tuned: sustain 0.02)" column. SUSTAIN, when set, replaces
# the policy's sustain (--sustain): SUSTAIN=0 gives the "Shoal, sustain 0"
# column. Deterministic: same output every run. Extra arguments go to every
# simulate run, e.g. --launch-delay 90s.
set -euo pipefail
cd "$(dirname "$0")/../.."
GO=${GO:-go}
sustain=()
what="its own sustain"
if [ -n "${SUSTAIN:-}" ]; then
	sustain=(--sustain "$SUSTAIN")
	what="--sustain $SUSTAIN"
fi
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
"$GO" build -o "$bin/simulate" ./coordinator/internal/simulate/cmd/simulate
for trace in diurnal spike sawtooth azure-conv azure-conv-tokens; do
	echo "== simulate: deploy/traces/$trace.csv (policy deploy/traces/policy.json, $what)"
	"$bin/simulate" --trace "deploy/traces/$trace.csv" --policy deploy/traces/policy.json ${sustain[@]+"${sustain[@]}"} "$@"
	echo
done
