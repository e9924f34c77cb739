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
#   BenchmarkMapFedEntryCPU  map + encode an entry fed at commit, as appended (the usual
#                            case while following; base: settle with Recorded, then map)
#   BenchmarkExportFileNATS  SQLite log -> LogSource -> file + NATS sinks, N entries
#                            (catching up: the log is written before the exporter starts)
#   BenchmarkFollowFileNATS  the gateway's case: 8 writers append N entries while the
#                            exporter follows (/export), or with no exporter (/append);
#                            export's CPU per entry = export - append (the script prints it)
#                            and lag-ms is from the log's close to both sinks delivered
#   BenchmarkExportFedFileNATS  following without the log's own cost: entries fed from
#                            memory as the log's commit feed does, 1000 per checkpoint, to
#                            file + NATS sinks; the in-process export per entry
#   BenchmarkNATSSendCPU     the NATS sink alone: batches of 500 mapped events
#   (the NATS benchmarks are skipped without NATS at nats://127.0.0.1:4222;
#   with a local nats-server process the script also prints the server's
#   CPU per entry during each, from /proc)
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
# The NATS server's CPU (user+sys from /proc, 10 ms ticks) while a NATS
# benchmark runs, per entry: the server runs on the same cores in the
# harness, so it counts against export too. Skipped without a local
# nats-server process (or another user's one we cannot read). A server
# other jobs also use inflates the figure: start one of your own and set
# WARDEN_TEST_NATS=nats://127.0.0.1:PORT and NATS_PID=its pid.
nats_pid=${NATS_PID:-$(pgrep -x nats-server | head -1 || true)}
nats_ticks() { [ -n "$nats_pid" ] && awk '{print $14+$15}' "/proc/$nats_pid/stat" 2>/dev/null || echo 0; }
hz=$(getconf CLK_TCK)
run() {
	"$tmp/$1.test" -test.run '^$' -test.bench 'Benchmark(MapEntry|MapFedEntry|ExportEntry)CPU$' -test.benchmem |
		awk -v v="$1" '/^Benchmark/{print v, $0}' | tee -a "$out/export-cpu.txt"
	local b t0 t1
	"$tmp/$1.test" -test.run '^$' -test.bench '^BenchmarkFollowFileNATS/append$' -test.benchtime "${n}x" |
		awk -v v="$1" '/^Benchmark/{print v, $0}' | tee -a "$out/export-cpu.txt"
	for b in BenchmarkExportFileNATS BenchmarkExportFedFileNATS 'BenchmarkFollowFileNATS/export' BenchmarkNATSSendCPU; do
		t0=$(nats_ticks)
		"$tmp/$1.test" -test.run '^$' -test.bench "^${b}\$" -test.benchtime "${n}x" |
			awk -v v="$1" '/^Benchmark/{print v, $0}' | tee -a "$out/export-cpu.txt"
		t1=$(nats_ticks)
		if [ -n "$nats_pid" ]; then
			awk -v v="$1" -v b="$b" -v d=$((t1 - t0)) -v hz="$hz" -v n="$n" \
				'BEGIN{printf "%s nats-server %s %.1f cpu-µs/entry\n", v, b, d*1e6/hz/n}' | tee -a "$out/export-cpu.txt"
		fi
	done
}
compare_rounds run
cd ../..
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/export-cpu.txt"
awk '/^(base|new) /{for(i=1;i<=NF;i++)if($i=="cpu-ns/entry"||$i=="cpu-ns/event"){k=$1" "$2; s[k]+=$(i-1); c[k]++}}
	END{for(k in c)printf "%s: mean %.1f cpu-µs/entry over %d runs\n", k, s[k]/c[k]/1000, c[k]}' "$out/export-cpu.txt" | sort | tee -a "$out/export-cpu.txt"
awk '/^(base|new) nats-server /{k=$1" nats-server "$3; s[k]+=$4; c[k]++}
	END{for(k in c)printf "%s: mean %.1f cpu-µs/entry over %d runs\n", k, s[k]/c[k], c[k]}' "$out/export-cpu.txt" | sort | tee -a "$out/export-cpu.txt"
# Export's own CPU while following: per round and version, /export minus /append.
awk '/^(base|new) BenchmarkFollowFileNATS\/(append|export)-[0-9]+ /{for(i=1;i<=NF;i++)if($i=="cpu-ns/entry"){
		split($2,p,"/"); sub(/-[0-9]+$/,"",p[2]); v[$1" "p[2]]=$(i-1)
		if(p[2]=="export"){d=v[$1" export"]-v[$1" append"]; s[$1]+=d; c[$1]++; printf "%s follow: export - append = %.1f cpu-µs/entry\n", $1, d/1000}}}
	END{for(k in c)printf "%s follow: mean export - append %.1f cpu-µs/entry over %d runs\n", k, s[k]/c[k]/1000, c[k]}' "$out/export-cpu.txt" | tee -a "$out/export-cpu.txt"
