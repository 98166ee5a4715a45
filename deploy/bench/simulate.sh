#!/usr/bin/env bash
# Prints the elasticity scorecard (Shoal vs AWS target tracking vs the
# Kubernetes HPA) for each generated trace in deploy/traces, with the example
# policy deploy/traces/policy.json. Deterministic: same output every run.
# Extra arguments go to every simulate run, e.g. --launch-delay 90s.
set -euo pipefail
cd "$(dirname "$0")/../.."
GO=${GO:-go}
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
"$GO" build -o "$bin/simulate" ./coordinator/internal/simulate/cmd/simulate
for trace in diurnal spike sawtooth; do
	echo "== simulate: deploy/traces/$trace.csv (policy deploy/traces/policy.json)"
	"$bin/simulate" --trace "deploy/traces/$trace.csv" --policy deploy/traces/policy.json "$@"
	echo
done
