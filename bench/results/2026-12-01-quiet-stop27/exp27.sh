#!/bin/bash
set -u
OUT=/work/main/bench/results/2026-12-01-quiet-stop27/export-ab
mkdir -p $OUT
for i in 1 2; do
  for v in base main; do
    case $v in base) d=/tmp/base27;; main) d=/work/main;; esac
    (cd $d && go run ./bench/cmd/wardenbench -no-nginx -only go-floor,warden-full,warden-full+export -reps 1 -out $OUT/$v-$i > $OUT/$v-$i.log 2>&1)
  done
done
