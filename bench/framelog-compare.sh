#!/usr/bin/env bash
# Compares BenchmarkFrameLogAppend (internal/store/framelog: a batch as one
# CRC-framed frame, one pwrite + one fdatasync) with BenchmarkStoreAppend
# (internal/store/sqlite: the same batches through AppendNoFlush + Flush)
# of the working tree in one session, interleaved, for decision 038:
#
#   bash bench/framelog-compare.sh          # ROUNDS=4 N=20000
#   PREALLOC=1 bash bench/framelog-compare.sh   # + the preallocating writer
#   BATCHES='8|16|32|64' ...                      # only these batch sizes
#
# Both benchmarks build the same gateway-like batches (1, 8, 64, 256
# entries of ~450 bytes, hashes and signed heads prepared beforehand) and
# count the calling thread's CPU (getrusage RUSAGE_THREAD, user + system,
# fdatasync included) per entry, its user part and the process's CPU.
# Reported per run and batch size, then the means, min–max over the runs
# and framelog ÷ sqlite. Output goes to $OUT (default
# bench/results/framelog-<date>/).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-bench/results/framelog-$(date -u +%Y-%m-%d-%H%M)}"
rounds="${ROUNDS:-4}"
n="${N:-20000}"
mkdir -p "$out"
. bench/compare-lib.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go test -c -o "$tmp/sqlite.test" ./internal/store/sqlite
go test -c -o "$tmp/framelog.test" ./internal/store/framelog
{
	echo "# BenchmarkStoreAppend (sqlite) vs BenchmarkFrameLogAppend (framelog), ${n}x, $(git rev-parse --short HEAD)+worktree"
	echo "# $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out/framelog.txt"
# compare_rounds calls run base / run new, alternating which goes first.
# PREALLOC=1 adds BenchmarkFrameLogAppendPrealloc (the real preallocating
# writer, Preallocate(DefaultChunk) with its durable mark: decisions 044,
# 045) right after each framelog run; its ÷ growing ratios are printed last.
run() {
	case "$1" in
	base) "$tmp/sqlite.test" -test.run '^$' -test.bench "^BenchmarkStoreAppend\$/$sel" -test.benchtime "${n}x" |
		awk '/^BenchmarkStoreAppend\//{sub(/^BenchmarkStoreAppend\//, "", $1); print "sqlite", $0}' ;;
	new) "$tmp/framelog.test" -test.run '^$' -test.bench "$fl_bench/$sel" -test.benchtime "${n}x" |
		awk '/^BenchmarkFrameLogAppend\//{sub(/^BenchmarkFrameLogAppend\//, "", $1); print "framelog", $0}
			/^BenchmarkFrameLogAppendPrealloc\//{sub(/^BenchmarkFrameLogAppendPrealloc\//, "", $1); print "framelog-prealloc", $0}' ;;
	esac | tee -a "$out/framelog.txt"
}
sel="^batch=(${BATCHES:-1|8|64|256})\$"
fl_bench='^BenchmarkFrameLogAppend$'
[ "${PREALLOC:-0}" = 1 ] && fl_bench='^BenchmarkFrameLogAppend(Prealloc)?$'
compare_rounds run
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/framelog.txt"
awk '/^(sqlite|framelog|framelog-prealloc) /{v=$1; b=$2; sub(/-[0-9]+$/, "", b); k=v" "b
		for(i=1;i<=NF;i++){
			if($i=="cpu-µs/entry"){x=$(i-1); c[k]+=x; if(!(k in cmin)||x<cmin[k])cmin[k]=x; if(x>cmax[k])cmax[k]=x}
			if($i=="user-µs/entry")u[k]+=$(i-1)
			if($i=="proc-cpu-µs/entry")p[k]+=$(i-1)
		}
		cnt[k]++; batches[b]=1}
	END{
		for(b in batches){
			s="sqlite "b
			if(!(s in cnt))continue
			printf "%s: sqlite %.2f cpu-µs/entry (%.2f–%.2f), %.2f user, %.2f proc over %d runs\n", b, c[s]/cnt[s], cmin[s], cmax[s], u[s]/cnt[s], p[s]/cnt[s], cnt[s]
			for(vi=1;vi<=2;vi++){
				v=(vi==1)?"framelog":"framelog-prealloc"; f=v" "b
				if(!(f in cnt))continue
				printf "%s: %s %.2f cpu-µs/entry (%.2f–%.2f), %.2f user, %.2f proc over %d runs; ÷ sqlite %.2f (thread), %.2f (process)\n",
					b, v, c[f]/cnt[f], cmin[f], cmax[f], u[f]/cnt[f], p[f]/cnt[f], cnt[f], (c[f]/cnt[f])/(c[s]/cnt[s]), (p[f]/cnt[f])/(p[s]/cnt[s])
			}
		}
	}' "$out/framelog.txt" | sort -t= -k2,2n -s | tee -a "$out/framelog.txt"
if [ "${PREALLOC:-0}" = 1 ]; then
	awk '/^(framelog|framelog-prealloc) /{v=$1; b=$2; sub(/-[0-9]+$/, "", b)
			for(i=1;i<=NF;i++){
				if($i=="cpu-µs/entry")c[v" "b]+=$(i-1)
				if($i=="proc-cpu-µs/entry")p[v" "b]+=$(i-1)
			}
			n[v" "b]++; bs[b]=1}
		END{for(b in bs) if(("framelog "b) in n && ("framelog-prealloc "b) in n)
			printf "%s: prealloc ÷ growing %.2f (thread), %.2f (process)\n", b,
				(c["framelog-prealloc "b]/n["framelog-prealloc "b])/(c["framelog "b]/n["framelog "b]),
				(p["framelog-prealloc "b]/n["framelog-prealloc "b])/(p["framelog "b]/n["framelog "b])}' "$out/framelog.txt" |
		sort -t= -k2,2n | tee -a "$out/framelog.txt"
fi
