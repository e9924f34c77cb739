#!/bin/bash
# alternate harness runs: base (06cd78a, this stop's start) and new (0800f85: index schema 7,
# Open checks frame heads, preallocated frame file with a durable mark); go-floor/masking/full,
# 2 reps each, four pairs, then one profiled run of each.
set -u
R=/work/main/bench/results/2026-12-01-quiet-stop29
mkdir -p $R/ab $R/profiles
for i in 1 2 3 4; do
  for v in new base; do
    case $v in base) d=/tmp/base29;; new) d=/tmp/new29;; esac
    (cd $d && go run ./bench/cmd/wardenbench -no-nginx -only go-floor,warden-masking,warden-full -reps 2 -out $R/ab/$v-$i > $R/ab/$v-$i.log 2>&1)
  done
done
for v in new base; do
  case $v in base) d=/tmp/base29;; new) d=/tmp/new29;; esac
  (cd $d && go run ./bench/cmd/wardenbench -no-nginx -only go-floor,warden-masking,warden-full -profile-all -reps 1 -out $R/profiles/$v > $R/profiles/$v.log 2>&1)
done
echo DONE > /tmp/ab29.done
