#!/usr/bin/env bash
# Compares the masker benchmarks (internal/mask: BenchmarkMask sparse/dense
# text, JSON and SSE, and BenchmarkWrapResponseJSON) of the working tree
# with a base revision, in one session, base and new interleaved:
#
#   bash bench/mask-compare.sh            # base: main
#   bash bench/mask-compare.sh a01b747    # any revision
#
# Both binaries run the working tree's bench_test.go, so they measure the
# same code paths. Two measures, each 6 rounds alternating base/new:
#   - wall time per op (go test -benchmem), compared with benchstat;
#   - CPU time per op from perf's task-clock (when perf is there):
#     (cpu(N iterations) - cpu(1 iteration)) / (N-1), so process start-up
#     and benchmark set-up cancel out. On a shared, busy machine wall time
#     swings by tens of percent; CPU time is the steadier figure.
# Output goes to $OUT (default bench/results/mask-compare-<date>/).
set -euo pipefail
cd "$(dirname "$0")/.."
base_rev="${1:-main}"
out="${OUT:-bench/results/mask-compare-$(date -u +%Y-%m-%d-%H%M)}"
rounds="${ROUNDS:-6}"
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
git archive "$base_rev" | tar -x -C "$tmp"
cp internal/mask/bench_test.go "$tmp/internal/mask/bench_test.go"
(cd "$tmp" && go test -c -o "$tmp/base.test" ./internal/mask)
go test -c -o "$tmp/new.test" ./internal/mask
benchstat=$(command -v benchstat || echo "$(go env GOPATH)/bin/benchstat")
[ -x "$benchstat" ] || go install golang.org/x/perf/cmd/benchstat@latest

pattern='BenchmarkMask/warden|BenchmarkWrapResponseJSON'
: >"$out/wall-base.txt"
: >"$out/wall-new.txt"
for round in $(seq "$rounds"); do
	order="base new"
	[ $((round % 2)) -eq 0 ] && order="new base"
	for v in $order; do
		"$tmp/$v.test" -test.run '^$' -test.bench "$pattern" -test.benchmem -test.benchtime 1s >>"$out/wall-$v.txt"
	done
done
"$benchstat" "$out/wall-base.txt" "$out/wall-new.txt" | tee "$out/wall.benchstat"

if perf stat -e task-clock -x, true >/dev/null 2>&1; then
	benches=(
		"BenchmarkMask/warden/sparse/text 2000" "BenchmarkMask/warden/sparse/json 700"
		"BenchmarkMask/warden/sparse/sse 25" "BenchmarkMask/warden/dense/text 150"
		"BenchmarkMask/warden/dense/json 120" "BenchmarkMask/warden/dense/sse 20"
		"BenchmarkWrapResponseJSON/1KiB-clean 30000" "BenchmarkWrapResponseJSON/1KiB-pii 25000"
		"BenchmarkWrapResponseJSON/64KiB-sparse 600"
	)
	cpu() { # variant pattern n -> task-clock msec
		perf stat -e task-clock -x, "$tmp/$1.test" -test.run '^$' -test.bench "$2\$" -test.benchtime "${3}x" 2>&1 >/dev/null |
			awk -F, '/task-clock/{print $1}'
	}
	: >"$out/cpu-base.txt"
	: >"$out/cpu-new.txt"
	for round in $(seq "$rounds"); do
		for b in "${benches[@]}"; do
			name=${b% *} n=${b##* }
			order="base new"
			[ $((round % 2)) -eq 0 ] && order="new base"
			for v in $order; do
				tn=$(cpu "$v" "$name" "$n")
				t1=$(cpu "$v" "$name" 1)
				awk -v a="$tn" -v b="$t1" -v n="$n" -v name="$name" \
					'BEGIN{printf "%s-2 %d %.0f cpu-ns/op\n", name, n, (a-b)*1e6/(n-1)}' >>"$out/cpu-$v.txt"
			done
		done
	done
	"$benchstat" "$out/cpu-base.txt" "$out/cpu-new.txt" | tee "$out/cpu.benchstat"
fi
echo "results in $out (load average at the end: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
