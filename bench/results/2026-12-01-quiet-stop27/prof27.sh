#!/bin/bash
set -u
OUT=/work/main/bench/results/2026-12-01-quiet-stop27/profiles
mkdir -p $OUT
for i in 1 2; do
  for v in main gat; do
    case $v in main) d=/work/main;; gat) d=/tmp/gat27;; esac
    (cd $d && go run ./bench/cmd/wardenbench -no-nginx -only go-floor,warden-masking,warden-full -profile-all -reps 1 -out $OUT/$v-$i > $OUT/$v-$i.log 2>&1)
  done
done
echo DONE > /tmp/prof27.done
