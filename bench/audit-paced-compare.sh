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
# Per rate and binary: the median and the range over the runs (a run hit
# by another process's I/O burst moves a mean a lot; the median less).
awk '/^(base|new) /{split($2,p,"rate="); r=p[2]; sub(/-[0-9]+$/,"",r)
		for(i=4;i<NF;i+=2) if($(i+1)~/^(cpu-µs\/append|p50-ms|p99-ms|entries\/txn)$/) print r, $1, $(i+1), $i}' "$out/paced.txt" |
	sort -k1,1n -k2,2 -k3,3 -k4,4g |
	awk '{k=$1" "$2" "$3; if(k!=prev && prev!="") flush(); prev=k; v[++n]=$4}
		function flush(){ m=(n%2)?v[(n+1)/2]:(v[n/2]+v[n/2+1])/2; split(prev,a," ")
			printf "rate=%s %s %s: median %g (%g–%g) over %d runs\n", a[1], a[2], a[3], m, v[1], v[n], n; n=0 }
		END{if(prev!="") flush()}' | tee -a "$out/paced.txt"
