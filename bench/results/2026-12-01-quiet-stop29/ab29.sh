#!/bin/bash
# alternate harness runs: base (06cd78a, this stop's start) and new (0800f85: index schema 7,
# Open checks frame heads, preallocated frame file with a durable mark); go-floor/masking/full,
# 2 reps each. PAIRS numbers the pairs, ORDER says which build runs first in each,
# PROFILE=1 adds one profiled run of each at the end. Run as: bash ab29.sh (pairs 1-4, new
# first, then the profiles); ab29b.sh ran pairs 5-6 after CI.
set -u
R=/work/main/bench/results/2026-12-01-quiet-stop29
PAIRS=${PAIRS:-1 2 3 4} ORDER=${ORDER:-new base} PROFILE=${PROFILE:-1}
dir() { case $1 in base) echo /tmp/base29;; new) echo /tmp/new29;; esac; }
mkdir -p $R/ab $R/profiles
for i in $PAIRS; do
  for v in $ORDER; do
    (cd $(dir $v) && go run ./bench/cmd/wardenbench -no-nginx -only go-floor,warden-masking,warden-full -reps 2 -out $R/ab/$v-$i > $R/ab/$v-$i.log 2>&1)
  done
done
if [ "$PROFILE" = 1 ]; then
  for v in $ORDER; do
    (cd $(dir $v) && go run ./bench/cmd/wardenbench -no-nginx -only go-floor,warden-masking,warden-full -profile-all -reps 1 -out $R/profiles/$v > $R/profiles/$v.log 2>&1)
  done
fi
echo DONE > /tmp/ab29.done
