#!/usr/bin/env bash
# Interleaved recorder micro-benchmark: base vs branch test binaries, same run.
# usage: compare.sh BASE.test NEW.test ROUNDS BENCH BENCHTIME
set -eu
base=$1 new=$2 rounds=${3:-3} bench=${4:-Request/json/parallel} bt=${5:-5000x}
for i in $(seq 1 "$rounds"); do
  for which in base new; do
    bin=$base; [ "$which" = new ] && bin=$new
    echo "# round $i $which load $(cut -d' ' -f1-3 /proc/loadavg)"
    (cd "$(dirname "$0")" && "$bin" -test.run XXX -test.bench "$bench" -test.benchtime "$bt" -test.benchmem 2>&1 | grep -E '^Benchmark' | sed "s/^Benchmark/$which: Benchmark/")
  done
done
