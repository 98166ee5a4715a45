#!/usr/bin/env bash
# Runs every fuzz target in the repository in turn, each for FUZZTIME
# (default 30s). Targets are found, not listed here: every package with a
# `func Fuzz` in a test file, every target `go test -list` names in it. A
# crasher is written by the go tool to the package's testdata/fuzz/FuzzXxx/,
# where `go test` (and so `make test`) replays it from then on.
set -uo pipefail
cd "$(dirname "$0")/../.."
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-30s}

mapfile -t dirs < <(grep -rlE --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' . | xargs -r -n1 dirname | sort -u)
if [ ${#dirs[@]} -eq 0 ]; then
	echo "fuzz: no fuzz targets found" >&2
	exit 1
fi
failed=()
ran=0
for dir in "${dirs[@]}"; do
	if ! targets=$($GO test -list '^Fuzz' "$dir" | grep '^Fuzz'); then
		echo "fuzz: $dir: cannot list its targets" >&2
		failed+=("$dir (list)")
		continue
	fi
	for target in $targets; do
		echo "== $dir $target for $FUZZTIME"
		ran=$((ran + 1))
		# Minimising a crasher takes at most 100 runs, so a slow target
		# still reports within a bounded time.
		if ! $GO test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime=100x "$dir"; then
			failed+=("$dir $target")
		fi
	done
done
echo "fuzz: $ran targets, ${#failed[@]} failed"
for f in "${failed[@]}"; do
	echo "  FAIL $f"
done
[ ${#failed[@]} -eq 0 ]
