#!/usr/bin/env bash
# interleaved base/new of BenchmarkExportFedFileNATS + MapFed
cd /work/wt/exm/internal/export
for r in $(seq ${ROUNDS:-4}); do
  order="base new"; [ $((r%2)) -eq 0 ] && order="new base"
  for v in $order; do
    WARDEN_TEST_NATS=nats://127.0.0.1:4333 /tmp/exm-$v.test -test.run '^$' -test.bench '^BenchmarkExportFedFileNATS$' -test.benchtime ${N:-8000}x | awk -v v=$v '/^Bench/{print v, $0}'
    /tmp/exm-$v.test -test.run '^$' -test.bench '^Benchmark(MapFedEntry|MapEntry)CPU$' -test.benchmem | awk -v v=$v '/^Bench/{print v, $0}'
  done
done | tee ${OUT:-/tmp/exm-fedcmp.txt}
awk '{for(i=1;i<=NF;i++)if($i=="cpu-ns/entry"){k=$1" "$2; s[k]+=$(i-1); c[k]++}} END{for(k in c)printf "%s mean %.1f cpu-µs/entry (%d)\n", k, s[k]/c[k]/1000, c[k]}' ${OUT:-/tmp/exm-fedcmp.txt} | sort
