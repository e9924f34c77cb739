#!/bin/bash
# alternate harness runs: base (c40abdb) and main, go-floor/masking/full, 2 reps each
set -u
OUT=/work/main/bench/results/2026-12-01-quiet-stop26/ab
mkdir -p $OUT
for i in 1 2; do
  for v in base main; do
    if [ $v = base ]; then d=/tmp/base26; else d=/work/main; fi
    (cd $d && go run ./bench/cmd/wardenbench -no-nginx -only go-floor,warden-masking,warden-full -reps 2 -out $OUT/$v-$i > $OUT/$v-$i.log 2>&1)
  done
done
echo DONE > /tmp/ab26.done
