#!/usr/bin/env bash
# Runs every Go micro-benchmark of the repository (token verification,
# policy decision, masker, audit append, ...) with allocations, 6 times,
# into one file that benchstat can read and compare:
#
#   bash bench/micro.sh                 # -> bench/results/micro-<date>.txt
#   bash bench/micro.sh old.txt         # explicit output file
#   benchstat old.txt new.txt           # compare two runs
#
# Environment: BENCH (regexp, default .), COUNT (default 6), PKGS (default
# ./internal/... ./bench/...), BENCHTIME (default 1s).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-bench/results/micro-$(date -u +%Y-%m-%d-%H%M).txt}"
mkdir -p "$(dirname "$out")"
# shellcheck disable=SC2086
go test -run '^$' -bench "${BENCH:-.}" -benchmem -count "${COUNT:-6}" \
	-benchtime "${BENCHTIME:-1s}" ${PKGS:-./internal/... ./bench/...} | tee "$out"
echo "wrote $out (compare runs with: benchstat OLD NEW)" >&2
