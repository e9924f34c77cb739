#!/bin/bash
# alternate harness runs: base (a1c678b, this stop's start), new (3c2610b: this stop's merges)
# and lag (new + branch issue-lag, its indexer deferral switched on in warden-full's config);
# go-floor/masking/full, 2 reps each. PAIRS numbers the pairs, ORDER says which build runs
# first in each, PROFILE=1 adds one profiled run of each at the end. Run as:
#   PAIRS=1 ORDER="new base lag" PROFILE=0 bash ab30.sh, then other pairs with other orders
set -u
R=/work/main/bench/results/2026-12-01-quiet-stop30
# PAIRS="" runs no pairs (it read ${PAIRS:-…} in this stop, so an empty PAIRS re-ran 1-4)
PAIRS=${PAIRS-1 2 3 4} ORDER=${ORDER:-new base lag} PROFILE=${PROFILE:-1}
dir() { case $1 in base) echo /tmp/base30;; new) echo /tmp/new30;; lag) echo /tmp/lag30;; esac; }
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
echo DONE > /tmp/ab30.done
