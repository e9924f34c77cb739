#!/bin/bash
# alternate harness runs: base (c5015a6), main (this stop without gat), gat (main + issue-gat); go-floor/masking/full, 2 reps each
set -u
OUT=/work/main/bench/results/2026-12-01-quiet-stop27/ab
mkdir -p $OUT
for i in 1 2; do
  for v in base main gat; do
    case $v in base) d=/tmp/base27;; main) d=/work/main;; gat) d=/tmp/gat27;; esac
    (cd $d && go run ./bench/cmd/wardenbench -no-nginx -only go-floor,warden-masking,warden-full -reps 2 -out $OUT/$v-$i > $OUT/$v-$i.log 2>&1)
  done
done
echo DONE > /tmp/ab27.done
