#!/usr/bin/env bash
# Compares BenchmarkAppendPaced (internal/audit: the open loop in-process —
# simulated requests at a fixed rate, two appends each, SQLite, every
# batch signed) of the working tree with a base revision in one session,
# base and new interleaved (decision 036):
#
#   bash bench/audit-paced-compare.sh            # base: main
#   RATES="2000 4000" N=20000 ROUNDS=4 bash bench/audit-paced-compare.sh a01b747
#
# Both binaries run the working tree's bench_test.go. Reported per run:
# cpu-µs/append (process CPU, getrusage), the Append latency p50/p99/max
# in ms from the intended send time, entries per transaction and per
# flush. N is the number of appends per run (N/2 requests at the rate).
# Output goes to $OUT (default bench/results/audit-paced-<date>/).
set -euo pipefail
cd "$(dirname "$0")/.."
base_rev="${1:-main}"
out="${OUT:-bench/results/audit-paced-$(date -u +%Y-%m-%d-%H%M)}"
rounds="${ROUNDS:-3}"
rates="${RATES:-2000 4000 8000}"
n="${N:-16000}"
mkdir -p "$out"
. bench/compare-lib.sh
compare_build internal/audit internal/audit/bench_test.go
{
	echo "# BenchmarkAppendPaced/sqlite/rate={$rates}, ${n}x, base $base_rev ($(git rev-parse --short "$base_rev")) vs $(git rev-parse --short HEAD)+worktree"
	echo "# $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out/paced.txt"
run() {
	local rate
	for rate in $rates; do
		"$tmp/$1.test" -test.run '^$' -test.bench "BenchmarkAppendPaced/sqlite/rate=$rate\$" -test.benchtime "${n}x" |
			awk -v v="$1" '/^BenchmarkAppendPaced/{print v, $0}' | tee -a "$out/paced.txt"
	done
}
compare_rounds run
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/paced.txt"
awk '/^(base|new) /{split($2,p,"rate="); r=p[2]; sub(/-[0-9]+$/,"",r); key=r" "$1; k[key]++
		for(i=1;i<=NF;i++){if($i=="cpu-µs/append")c[key]+=$(i-1); if($i=="p50-ms")a[key]+=$(i-1); if($i=="p99-ms")q[key]+=$(i-1); if($i=="entries/txn")t[key]+=$(i-1)
			if($i=="p99-ms"){if(!(key in lo)||$(i-1)<lo[key])lo[key]=$(i-1); if($(i-1)>hi[key])hi[key]=$(i-1)}}}
	END{for(key in k)printf "rate=%s: mean %.1f cpu-µs/append, p50 %.2f ms, p99 %.2f ms (%.2f–%.2f), %.1f entries/txn over %d runs\n",
		key, c[key]/k[key], a[key]/k[key], q[key]/k[key], lo[key], hi[key], t[key]/k[key], k[key]}' "$out/paced.txt" | sort -n -t= -k2 | tee -a "$out/paced.txt"
