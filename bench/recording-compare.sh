#!/usr/bin/env bash
# Compares the recorder's CPU per recorded request (internal/recording:
# BenchmarkRequest json/sse200 parallel — serial waits out the commit
# linger every time — and
# BenchmarkRequestPaced and BenchmarkRequestOpen) of the working tree with a base revision, in one
# session, base and new interleaved:
#
#   bash bench/recording-compare.sh            # base: main
#   bash bench/recording-compare.sh a01b747    # any revision
#
# Both binaries run the working tree's bench_test.go. The benchmarks
# report cpu-µs/op (the process's user+sys time per recording, from
# getrusage) and stored-B/op (the object's size); on a shared machine
# cpu-µs/op is the figure to read, not ns/op. Output goes to $OUT
# (default bench/results/recording-compare-<date>/).
set -euo pipefail
cd "$(dirname "$0")/.."
base_rev="${1:-main}"
out="${OUT:-bench/results/recording-compare-$(date -u +%Y-%m-%d-%H%M)}"
rounds="${ROUNDS:-4}"
n="${N:-4000}"
paced="${PACED:-1500}"
open="${OPEN:-6000}"
mkdir -p "$out"
. bench/compare-lib.sh
compare_build internal/recording internal/recording/bench_test.go

run() {
	"$tmp/$1.test" -test.run '^$' -test.bench 'BenchmarkRequest/.*/parallel' -test.benchtime "${n}x" -test.benchmem >>"$out/$1.txt"
	[ "$paced" = 0 ] || "$tmp/$1.test" -test.run '^$' -test.bench 'BenchmarkRequestPaced' -test.benchtime "${paced}x" >>"$out/$1.txt"
	[ "$open" = 0 ] || "$tmp/$1.test" -test.run '^$' -test.bench 'BenchmarkRequestOpen' -test.benchtime "${open}x" >>"$out/$1.txt"
}
: >"$out/base.txt"
: >"$out/new.txt"
compare_rounds run
benchstat=$(command -v benchstat || echo "$(go env GOPATH)/bin/benchstat")
if [ -x "$benchstat" ]; then
	"$benchstat" "$out/base.txt" "$out/new.txt" | tee "$out/benchstat.txt"
else
	grep -h 'cpu-µs/op' "$out/base.txt" "$out/new.txt"
fi
echo "results in $out (load average at the end: $(cut -d' ' -f1-3 /proc/loadavg))" >&2
