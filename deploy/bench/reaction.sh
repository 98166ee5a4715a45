#!/usr/bin/env bash
# Detection-to-actuation latency of the scaling engine on the local cloud:
# p50 and max over SHOAL_REACTION_SPIKES (default 10) load spikes.
set -euo pipefail
cd "$(dirname "$0")/../.."
make --no-print-directory build >/dev/null
SHOAL_BIN="$PWD/bin" SHOAL_REACTION_SPIKES="${SHOAL_REACTION_SPIKES:-10}" \
	go test -tags multiprocess -count=1 -timeout 20m -run '^TestReactionTime$' -v ./deploy/e2e/scaling/ \
	| grep -vE '^(=== RUN|--- PASS|PASS|ok )'
