#!/bin/bash
# two more alternated pairs after CI (same builds as ab29.sh), to narrow the means.
set -u
R=/work/main/bench/results/2026-12-01-quiet-stop29
for i in 5 6; do
  for v in base new; do
    case $v in base) d=/tmp/base29;; new) d=/tmp/new29;; esac
    (cd $d && go run ./bench/cmd/wardenbench -no-nginx -only go-floor,warden-masking,warden-full -reps 2 -out $R/ab/$v-$i > $R/ab/$v-$i.log 2>&1)
  done
done
echo DONE > /tmp/ab29b.done
