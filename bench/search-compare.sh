#!/usr/bin/env bash
# Compares BenchmarkSearch (internal/store/sqlite: Store.Search on a log
# of WARDEN_BENCH_SEARCH_ENTRIES entries, default 1M, built and indexed
# once per binary, untimed; the console's queries, newest first, a page
# of 50) of the working tree with a base revision, base and new
# interleaved in one session:
#
#   bash bench/search-compare.sh            # base: main
#   bash bench/search-compare.sh a01b747    # any revision
#
# Both binaries run the working tree's search_bench_test.go. Reported per
# query and run: ns/op and cpu-µs/op (process CPU time from getrusage).
# Each run builds its own log (about 1.5 minutes at 1M entries). Output
# goes to $OUT (default bench/results/search-<date>/).
set -euo pipefail
cd "$(dirname "$0")/.."
base_rev="${1:-main}"
out="${OUT:-bench/results/search-$(date -u +%Y-%m-%d-%H%M)}"
rounds="${ROUNDS:-2}"
mkdir -p "$out"
. bench/compare-lib.sh
compare_build internal/store/sqlite internal/store/sqlite/search_bench_test.go
{
	echo "# BenchmarkSearch, ${WARDEN_BENCH_SEARCH_ENTRIES:-1000000} entries, base $base_rev ($(git rev-parse --short "$base_rev")) vs $(git rev-parse --short HEAD)+worktree"
	echo "# $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out/search.txt"
run() {
	"$tmp/$1.test" -test.run '^$' -test.bench 'BenchmarkSearch$' -test.benchtime 20x |
		awk -v v="$1" '/^BenchmarkSearch/{print v, $0}' | tee -a "$out/search.txt"
}
compare_rounds run
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/search.txt"
awk '/^(base|new) /{q=$2; for(i=1;i<=NF;i++){if($i=="cpu-µs/op")c[$1" "q]+=$(i-1)}; k[$1" "q]++}
	END{for(x in k)printf "%s: mean %.0f cpu-µs/op over %d runs\n", x, c[x]/k[x], k[x]}' "$out/search.txt" | sort -k2 | tee -a "$out/search.txt"
