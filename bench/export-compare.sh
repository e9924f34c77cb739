#!/usr/bin/env bash
# Compares the exporter's CPU per entry of the working tree with a base
# revision in one session, base and new interleaved:
#
#   bash bench/export-compare.sh            # base: main
#   bash bench/export-compare.sh a01b747    # any revision
#
# Both binaries run the working tree's internal/export/cpu_bench_test.go
# (it uses only names that existed before decision 020):
#   BenchmarkMapEntryCPU     map + encode one request.completed entry
#   BenchmarkExportEntryCPU  decode + map + encode (what the exporter does per entry read)
#   BenchmarkExportFileNATS  SQLite log -> LogSource -> file + NATS sinks, N entries
#                            (catching up: the log is written before the exporter starts)
#   BenchmarkFollowFileNATS  the gateway's case: 8 writers append N entries while the
#                            exporter follows (/export), or with no exporter (/append);
#                            export's CPU per entry = export - append (the script prints it)
#                            and lag-ms is from the log's close to both sinks delivered
#   (the NATS benchmarks are skipped without NATS at nats://127.0.0.1:4222)
# The figure is cpu-ns/entry: process CPU time from getrusage (GC included),
# steadier than ns/op on a shared machine. Output goes to $OUT (default
# bench/results/export-cpu-<date>/).
set -euo pipefail
cd "$(dirname "$0")/.."
base_rev="${1:-main}"
out="${OUT:-bench/results/export-cpu-$(date -u +%Y-%m-%d-%H%M)}"
rounds="${ROUNDS:-3}"
n="${N:-8000}"
mkdir -p "$out"
out=$(cd "$out" && pwd)
. bench/compare-lib.sh
compare_build internal/export internal/export/cpu_bench_test.go
{
	echo "# export CPU per entry, base $base_rev ($(git rev-parse --short "$base_rev")) vs $(git rev-parse --short HEAD)+worktree"
	echo "# $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out/export-cpu.txt"
cd internal/export # run where go test would
run() {
	"$tmp/$1.test" -test.run '^$' -test.bench 'Benchmark(MapEntry|ExportEntry)CPU$' -test.benchmem |
		awk -v v="$1" '/^Benchmark/{print v, $0}' | tee -a "$out/export-cpu.txt"
	"$tmp/$1.test" -test.run '^$' -test.bench 'Benchmark(Export|Follow)FileNATS$' -test.benchtime "${n}x" |
		awk -v v="$1" '/^Benchmark/{print v, $0}' | tee -a "$out/export-cpu.txt"
}
compare_rounds run
cd ../..
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/export-cpu.txt"
awk '/^(base|new) /{for(i=1;i<=NF;i++)if($i=="cpu-ns/entry"){k=$1" "$2; s[k]+=$(i-1); c[k]++}}
	END{for(k in c)printf "%s: mean %.1f cpu-µs/entry over %d runs\n", k, s[k]/c[k]/1000, c[k]}' "$out/export-cpu.txt" | sort | tee -a "$out/export-cpu.txt"
# Export's own CPU while following: per round and version, /export minus /append.
awk '/^(base|new) BenchmarkFollowFileNATS\/(append|export)-[0-9]+ /{for(i=1;i<=NF;i++)if($i=="cpu-ns/entry"){
		split($2,p,"/"); sub(/-[0-9]+$/,"",p[2]); v[$1" "p[2]]=$(i-1)
		if(p[2]=="export"){d=v[$1" export"]-v[$1" append"]; s[$1]+=d; c[$1]++; printf "%s follow: export - append = %.1f cpu-µs/entry\n", $1, d/1000}}}
	END{for(k in c)printf "%s follow: mean export - append %.1f cpu-µs/entry over %d runs\n", k, s[k]/c[k]/1000, c[k]}' "$out/export-cpu.txt" | tee -a "$out/export-cpu.txt"
