#!/usr/bin/env bash
# Prints the elasticity scorecard (Shoal vs AWS target tracking, AWS target
# tracking on a 10 s high-resolution metric, and the Kubernetes HPA) for each
# trace in deploy/traces, with the tuned example policy
# deploy/traces/policy.json and its sustain share (SUSTAIN, default 0.02: a
# knob the policy proto does not carry yet). Deterministic: same output every
# run. Extra arguments go to every simulate run, e.g. --launch-delay 90s.
set -euo pipefail
cd "$(dirname "$0")/../.."
GO=${GO:-go}
SUSTAIN=${SUSTAIN:-0.02}
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
"$GO" build -o "$bin/simulate" ./coordinator/internal/simulate/cmd/simulate
for trace in diurnal spike sawtooth azure-conv azure-conv-tokens; do
	echo "== simulate: deploy/traces/$trace.csv (policy deploy/traces/policy.json, sustain $SUSTAIN)"
	"$bin/simulate" --trace "deploy/traces/$trace.csv" --policy deploy/traces/policy.json --sustain "$SUSTAIN" "$@"
	echo
done
