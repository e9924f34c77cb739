#!/usr/bin/env bash
# nats-server CPU per published event: BenchmarkNATSSendCPU (real OCSF
# request.completed events, 3.4 KB, Nats-Msg-Id, file storage, the
# sink's duplicate window) against each server, interleaved.
set -eu
bin=$1; n=${N:-20000}; rounds=${ROUNDS:-3}
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14+$15}' /proc/$1/stat; }
for r in $(seq $rounds); do
  for spec in "2.9.10 4333 $(cat /tmp/exm-nats29/pid)" "2.15.2 4334 $(cat /tmp/exm-nats215/pid)"; do
    set -- $spec
    t0=$(ticks $3)
    out=$(cd /work/wt/exm/internal/export && WARDEN_TEST_NATS=nats://127.0.0.1:$2 $bin -test.run '^$' -test.bench '^BenchmarkNATSSendCPU$' -test.benchtime ${n}x | grep ^Bench)
    t1=$(ticks $3)
    echo "round $r server $1: $(awk -v d=$((t1-t0)) -v hz=$hz -v n=$n 'BEGIN{printf "%.1f", d*1e6/hz/n}') server-cpu-µs/event | client: $out"
  done
done
