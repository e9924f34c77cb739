#!/usr/bin/env bash
# Compares BenchmarkIndexWrite (internal/store/sqlite: the search index's
# write of N decoded entries in batches of 2048, as audit.Indexer writes
# under load) of the working tree with a base revision, base and new
# interleaved in one session:
#
#   bash bench/index-write-compare.sh            # base: main
#   bash bench/index-write-compare.sh a01b747    # any revision
#
# Both binaries run the working tree's index_bench_test.go, whose
# BenchmarkIndexWrite has two workloads (decision 039): mix (many
# principals, routes and models, longer text) and harness (the bench
# harness's warden-full requests: short text, four mask rules per
# completion); WORKLOAD=mix or WORKLOAD=harness runs one. Reported per
# run: cpu-µs/entry (process CPU time from getrusage: the index's cost per
# audited entry) and thread-cpu-µs/entry (the writing thread's alone,
# without the GC's background workers: steadier). Output goes to $OUT (default
# bench/results/index-write-<date>/).
#
# BATCHES="1024 4096 16384 65536" instead compares batch sizes (entries
# per WriteIndex call, decision 046) of the working tree alone, the sizes
# interleaved in each round (the order rotates from round to round);
# choose N a multiple of the largest so every run writes whole batches.
set -euo pipefail
cd "$(dirname "$0")/.."
base_rev="${1:-main}"
out="${OUT:-bench/results/index-write-$(date -u +%Y-%m-%d-%H%M)}"
rounds="${ROUNDS:-4}"
n="${N:-200000}"
workload="${WORKLOAD:-}"
mkdir -p "$out"
batches="${BATCHES:-}"
if [ -n "$batches" ]; then
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	go test -c -o "$tmp/new.test" ./internal/store/sqlite
	{
		echo "# BenchmarkIndexWrite, ${n}x, batch sizes $batches, $(git rev-parse --short HEAD)+worktree"
		echo "# $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
	} | tee "$out/index-batches.txt"
	read -ra sizes <<<"$batches"
	for round in $(seq "$rounds"); do
		for i in "${!sizes[@]}"; do
			b=${sizes[$(((i + round - 1) % ${#sizes[@]}))]}
			WARDEN_BENCH_INDEX_BATCH=$b "$tmp/new.test" -test.run '^$' -test.bench "BenchmarkIndexWrite/${workload}" -test.benchtime "${n}x" |
				awk -v v="batch=$b" '/^BenchmarkIndexWrite/{print v, $0}' | tee -a "$out/index-batches.txt"
		done
	done
	echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/index-batches.txt"
	awk '/^batch=/{v=$1" "$2; for(i=1;i<=NF;i++){if($i=="cpu-µs/entry")c=$(i-1);if($i=="thread-cpu-µs/entry")t=$(i-1)}
		k[v]++; if(!(v in cmin)||c<cmin[v])cmin[v]=c; if(c>cmax[v])cmax[v]=c; if(!(v in tmin)||t<tmin[v])tmin[v]=t; if(t>tmax[v])tmax[v]=t}
		END{for(v in k)printf "%s: cpu-µs/entry %.2f–%.2f, thread-cpu-µs/entry %.2f–%.2f over %d runs\n", v, cmin[v], cmax[v], tmin[v], tmax[v], k[v]}' \
		"$out/index-batches.txt" | sort -t= -k2 -n | tee -a "$out/index-batches.txt"
	exit 0
fi
. bench/compare-lib.sh
compare_build internal/store/sqlite internal/store/sqlite/index_bench_test.go
{
	echo "# BenchmarkIndexWrite, ${n}x, base $base_rev ($(git rev-parse --short "$base_rev")) vs $(git rev-parse --short HEAD)+worktree"
	echo "# $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out/index-write.txt"
run() {
	"$tmp/$1.test" -test.run '^$' -test.bench "BenchmarkIndexWrite/${workload}" -test.benchtime "${n}x" |
		awk -v v="$1" '/^BenchmarkIndexWrite/{print v, $0}' | tee -a "$out/index-write.txt"
}
compare_rounds run
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/index-write.txt"
awk '/^(base|new) /{v=$1" "$2; for(i=1;i<=NF;i++){if($i=="cpu-µs/entry")c[v]+=$(i-1);if($i=="thread-cpu-µs/entry")t[v]+=$(i-1)};k[v]++}
	END{for(v in k)printf "%s: mean %.2f cpu-µs/entry, %.2f thread-cpu-µs/entry over %d runs\n", v, c[v]/k[v], t[v]/k[v], k[v]}' "$out/index-write.txt" | sort | tee -a "$out/index-write.txt"
