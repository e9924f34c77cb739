#!/usr/bin/env bash
# Compares BenchmarkStoreAppend (internal/store/sqlite: the store's part
# of the audit log's writer per entry, AppendNoFlush + Flush of prepared
# batches, CPU of the calling thread) of the working tree with a base
# revision in one session, base and new interleaved:
#
#   bash bench/store-append-compare.sh            # base: main
#   bash bench/store-append-compare.sh 203b3d1    # any revision
#
# Both binaries run the working tree's append_bench_test.go. Reported
# per run and batch size: cpu-µs/entry (thread CPU, user + system,
# fdatasync included), user-µs/entry (its user part, which other
# processes' I/O moves least), proc-cpu-µs/entry and wal-frames/commit. Output goes to $OUT
# (default bench/results/store-append-<date>/).
set -euo pipefail
cd "$(dirname "$0")/.."
base_rev="${1:-main}"
out="${OUT:-bench/results/store-append-$(date -u +%Y-%m-%d-%H%M)}"
rounds="${ROUNDS:-4}"
n="${N:-20000}"
mkdir -p "$out"
. bench/compare-lib.sh
compare_build internal/store/sqlite internal/store/sqlite/append_bench_test.go internal/audit/storetest/batches.go
{
	echo "# BenchmarkStoreAppend, ${n}x, base $base_rev ($(git rev-parse --short "$base_rev")) vs $(git rev-parse --short HEAD)+worktree"
	echo "# $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out/store-append.txt"
run() {
	"$tmp/$1.test" -test.run '^$' -test.bench 'BenchmarkStoreAppend' -test.benchtime "${n}x" |
		awk -v v="$1" '/^BenchmarkStoreAppend/{print v, $0}' | tee -a "$out/store-append.txt"
}
compare_rounds run
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/store-append.txt"
awk '/^(base|new) /{for(i=1;i<=NF;i++){if($i=="cpu-µs/entry")c[$1" "$2]+=$(i-1);if($i=="proc-cpu-µs/entry")p[$1" "$2]+=$(i-1);if($i=="user-µs/entry")u[$1" "$2]+=$(i-1);if($i=="wal-frames/commit")f[$1" "$2]+=$(i-1)};k[$1" "$2]++}
	END{for(v in k)printf "%s: mean %.2f cpu-µs/entry (thread), %.2f user-µs/entry (thread), %.2f proc-cpu-µs/entry, %.2f wal-frames/commit over %d runs\n", v, c[v]/k[v], u[v]/k[v], p[v]/k[v], f[v]/k[v], k[v]}' "$out/store-append.txt" | sort -k2,2 -k1,1 | tee -a "$out/store-append.txt"
