#!/usr/bin/env bash
# Compares the request's side of the audit path (decision 037) of the
# working tree with a base revision, base and new interleaved in one
# session:
#
#   bash bench/enc-compare.sh            # base: main
#   bash bench/enc-compare.sh a01b747    # any revision
#
# Two benchmarks, each binary built from the base revision with the
# working tree's benchmark file (same workload and metrics):
#   - internal/audit BenchmarkRequestEntries: a gateway-shaped admission
#     and completion entry built, given id and time and encoded (one op
#     per request; one goroutine, so ns/op is CPU on a quiet core);
#   - internal/gateway BenchmarkAuditedRequest: chat completions through
#     the whole path with the SQLite audit log, 32 clients;
#     cpu-µs/op is the process CPU per request (clients and upstream
#     included), allocs/op the process's allocations per request.
# Reported: every run, then means and spread (min..max) per binary.
# Environment: ROUNDS (default 6), N (gateway requests per run, default
# 20000), BENCHTIME (entries, default 1s). Output: $OUT (default
# bench/results/enc-<date>/).
set -euo pipefail
cd "$(dirname "$0")/.."
base_rev="${1:-main}"
out="${OUT:-bench/results/enc-$(date -u +%Y-%m-%d-%H%M)}"
rounds="${ROUNDS:-6}"
n="${N:-20000}"
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/src"
git archive "$base_rev" | tar -x -C "$tmp/src"
for f in internal/audit/request_bench_test.go internal/gateway/audit_bench_test.go; do cp "$f" "$tmp/src/$f"; done
for p in audit gateway; do
	(cd "$tmp/src" && go test -c -o "$tmp/base-$p.test" "./internal/$p")
	go test -c -o "$tmp/new-$p.test" "./internal/$p"
done
{
	echo "# base $base_rev ($(git rev-parse --short "$base_rev")) vs $(git rev-parse --short HEAD)+worktree"
	echo "# $(nproc) cores; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$out/enc.txt"
run() {
	"$tmp/$1-audit.test" -test.run '^$' -test.bench 'BenchmarkRequestEntries$' -test.benchmem -test.benchtime "${BENCHTIME:-1s}" |
		awk -v v="$1" '/^BenchmarkRequestEntries/{print v, $0}' | tee -a "$out/enc.txt"
	"$tmp/$1-gateway.test" -test.run '^$' -test.bench 'BenchmarkAuditedRequest/' -test.benchmem -test.benchtime "${n}x" |
		awk -v v="$1" '/^BenchmarkAuditedRequest/{print v, $0}' | tee -a "$out/enc.txt"
}
for round in $(seq "$rounds"); do
	order="base new"
	[ $((round % 2)) -eq 0 ] && order="new base"
	for v in $order; do run "$v"; done
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/enc.txt"
awk '/^(base|new) /{
		k=$1" "$2
		for(i=4;i<NF;i++){u=$(i+1); if(u=="ns/op"||u=="cpu-µs/op"||u=="B/op"||u=="allocs/op"){x=$i; key=k" "u; s[key]+=x; c[key]++; if(!(key in lo)||x<lo[key])lo[key]=x; if(x>hi[key])hi[key]=x}}
	}
	END{for(key in s)printf "%s: mean %.1f (%.1f..%.1f) over %d runs\n", key, s[key]/c[key], lo[key], hi[key], c[key]}' "$out/enc.txt" | sort | tee -a "$out/enc.txt"
