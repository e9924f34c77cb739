#!/usr/bin/env bash
# Compares BenchmarkAppend (internal/audit: durable appends through
# Log.Append on SQLite, group commit, every batch signed) of the working
# tree with a base
# revision in one session, base and new interleaved:
#
#   bash bench/audit-append-compare.sh            # base: main
#   bash bench/audit-append-compare.sh a01b747    # any revision
#
# Both binaries run the working tree's bench_test.go (same workload, same
# metrics). Reported per run: appends/s (wall), cpu-µs/append (process CPU
# time from getrusage, which includes the background search indexer) and
# entries per transaction. On a shared, busy machine wall time follows the
# CPU share the process gets; cpu-µs/append is the steadier figure.
# Output goes to $OUT (default bench/results/audit-append-<date>/).
set -euo pipefail
cd "$(dirname "$0")/.."
base_rev="${1:-main}"
out="${OUT:-bench/results/audit-append-$(date -u +%Y-%m-%d-%H%M)}"
rounds="${ROUNDS:-4}"
writers="${WRITERS:-256}"
n="${N:-40000}"
mkdir -p "$out"
. bench/compare-lib.sh
compare_build internal/audit internal/audit/bench_test.go
{
	echo "# BenchmarkAppend/sqlite/signed=batch/writers=$writers, ${n}x, base $base_rev ($(git rev-parse --short "$base_rev")) vs $(git rev-parse --short HEAD)+worktree"
	echo "# $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out/append.txt"
run() {
	"$tmp/$1.test" -test.run '^$' -test.bench "BenchmarkAppend/sqlite/signed=batch/writers=$writers\$" -test.benchtime "${n}x" |
		awk -v v="$1" '/^BenchmarkAppend/{print v, $0}' | tee -a "$out/append.txt"
}
compare_rounds run
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/append.txt"
awk '/^(base|new) /{for(i=1;i<=NF;i++){if($i=="appends/s")a[$1]+=$(i-1);if($i=="cpu-µs/append")c[$1]+=$(i-1)};k[$1]++}
	END{for(v in k)printf "%s: mean %.0f appends/s, %.1f cpu-µs/append over %d runs\n", v, a[v]/k[v], c[v]/k[v], k[v]}' "$out/append.txt" | sort | tee -a "$out/append.txt"
