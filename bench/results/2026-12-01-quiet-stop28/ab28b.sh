#!/bin/bash
# two more alternated pairs (rounds 3, 4), as ab28.sh
set -u
R=/work/main/bench/results/2026-12-01-quiet-stop28
for i in 3 4; do
  for v in frames base; do
    case $v in base) d=/tmp/base28;; frames) d=/tmp/new28;; esac
    (cd $d && go run ./bench/cmd/wardenbench -no-nginx -only go-floor,warden-masking,warden-full -reps 2 -out $R/ab/$v-$i > $R/ab/$v-$i.log 2>&1)
  done
done
echo DONE > /tmp/ab28b.done
