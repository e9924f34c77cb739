#!/usr/bin/env bash
# Profiles BenchmarkAuditedRequest/audit=on (internal/gateway) of a base
# revision and the working tree, alternated in one session, and prints
# per binary the CPU per request (µs, from the profile's samples) under
# the audit path's request-side functions (decision 049):
#
#   bash bench/audit-profile-compare.sh            # base: main
#   ROUNDS=3 N=20000 bash bench/audit-profile-compare.sh a7686ef
#
# The profiles (pprof binaries) stay in $tmp, removed on exit; the
# tables go to $OUT (default bench/results/audit-profile-<date>/).
set -euo pipefail
cd "$(dirname "$0")/.."
base_rev="${1:-main}"
out="${OUT:-bench/results/audit-profile-$(date -u +%Y-%m-%d-%H%M)}"
rounds="${ROUNDS:-2}"
n="${N:-20000}"
mkdir -p "$out"
. bench/compare-lib.sh
compare_build internal/gateway internal/gateway/audit_bench_test.go
# Functions whose cumulative CPU is reported (regexps for pprof -top).
funcs='audit\.\(\*Log\)\.(Append|AppendAsync|prepare|submit|run|commit|flushLoop)$|audit\.Marshal$|gateway\.\(\*Gateway\)\.(admit|complete|completionWorker|finishCall|appendAudit|params)$|context\.WithDeadline|context\.WithTimeout|runtime\.(mallocgc|gcBgMarkWorker|selectgo|park_m|newstack)$'
run() {
	local prof="$tmp/$1-$round.prof"
	"$tmp/$1.test" -test.run '^$' -test.bench 'BenchmarkAuditedRequest/audit=on' -test.benchmem -test.benchtime "${n}x" -test.cpuprofile "$prof" |
		awk -v v="$1" '/^BenchmarkAuditedRequest/{print v, $0}' | tee -a "$out/profile.txt"
	go tool pprof -top -cum -nodecount=100000 "$tmp/$1.test" "$prof" 2>/dev/null |
		RE="$funcs" awk -v v="$1" -v n="$n" '
			function sec(s){ if (s ~ /ms$/) { sub(/ms$/,"",s); return s/1000 } sub(/s$/,"",s); return s+0 }
			/Total samples/ { for(i=1;i<=NF;i++) if($i=="=") print v, "total", sec($(i+1))*1e6/n, "µs/req" }
			$6 ~ ENVIRON["RE"] { printf "%s %s %.2f µs/req\n", v, $6, sec($4)*1e6/n }' | tee -a "$out/profile.txt"
}
compare_rounds run
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out/profile.txt"
awk '$2 !~ /^Benchmark/ && /µs\/req/ { k=$1" "$2; s[k]+=$3; c[k]++ }
	END { for (k in s) printf "%s: mean %.2f µs/req over %d runs\n", k, s[k]/c[k], c[k] }' "$out/profile.txt" | sort -k2,2 -k1,1 | tee -a "$out/profile.txt"
