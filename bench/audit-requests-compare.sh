#!/usr/bin/env bash
# Compares BenchmarkAppendRequests (internal/audit: the harness's closed
# loop at 64 connections in-process — each request appends its admission
# and waits, spends UPSTREAM, hands its completion to a worker — SQLite,
# every batch signed) of the working tree with a base revision in one
# session, base and new interleaved (decision 040):
#
#   bash bench/audit-requests-compare.sh            # base: main
#   UPSTREAMS="15ms 2ms,work=300us" N=16000 ROUNDS=4 bash bench/audit-requests-compare.sh a01b747
#
# Both binaries run the working tree's bench_test.go. Reported per run:
# cpu-µs/append (process CPU, getrusage), appends/s and requests/s, the
# admission's latency p50/p99 in ms, entries per transaction and per
# flush. N is the number of appends per run (N/2 requests).
# Output goes to $OUT (default bench/results/audit-requests-<date>/).
set -euo pipefail
cd "$(dirname "$0")/.."
base_rev="${1:-main}"
out="${OUT:-bench/results/audit-requests-$(date -u +%Y-%m-%d-%H%M)}"
rounds="${ROUNDS:-3}"
upstreams="${UPSTREAMS:-15ms 2ms 2ms,work=300us}"
n="${N:-16000}"
mkdir -p "$out"
. bench/compare-lib.sh
compare_build internal/audit internal/audit/bench_test.go
{
	echo "# BenchmarkAppendRequests/sqlite/conns=64/upstream={$upstreams}, ${n}x, base $base_rev ($(git rev-parse --short "$base_rev")) vs $(git rev-parse --short HEAD)+worktree"
	echo "# $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out/requests.txt"
run() {
	local up
	for up in $upstreams; do
		"$tmp/$1.test" -test.run '^$' -test.bench "BenchmarkAppendRequests/sqlite/conns=64/upstream=$up\$" -test.benchtime "${n}x" |
			awk -v v="$1" '/^BenchmarkAppendRequests/{print v, $0}' | tee -a "$out/requests.txt"
	done
}
compare_rounds run
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/requests.txt"
# Per upstream and binary: the median and the range over the runs.
awk '/^(base|new) /{split($2,p,"upstream="); u=p[2]; sub(/-[0-9]+$/,"",u)
		for(i=4;i<NF;i+=2) if($(i+1)~/^(cpu-µs\/append|appends\/s|p50-ms|p99-ms|entries\/txn|entries\/flush)$/) print u, $1, $(i+1), $i}' "$out/requests.txt" |
	sort -k1,1 -k2,2 -k3,3 -k4,4g |
	awk '{k=$1" "$2" "$3; if(k!=prev && prev!="") flush(); prev=k; v[++n]=$4}
		function flush(){ m=(n%2)?v[(n+1)/2]:(v[n/2]+v[n/2+1])/2; split(prev,a," ")
			printf "upstream=%s %s %s: median %g (%g–%g) over %d runs\n", a[1], a[2], a[3], m, v[1], v[n], n; n=0 }
		END{if(prev!="") flush()}' | tee -a "$out/requests.txt"
