#!/bin/bash
# alternate harness runs: base (61a473e, before the frame file) and frames (54f8b12, wired);
# go-floor/masking/full, 2 reps each, then one profiled run of each.
set -u
R=/work/main/bench/results/2026-12-01-quiet-stop28
mkdir -p $R/ab $R/profiles
for i in 1 2; do
  for v in base frames; do
    case $v in base) d=/tmp/base28;; frames) d=/tmp/new28;; esac
    (cd $d && go run ./bench/cmd/wardenbench -no-nginx -only go-floor,warden-masking,warden-full -reps 2 -out $R/ab/$v-$i > $R/ab/$v-$i.log 2>&1)
  done
done
for v in base frames; do
  case $v in base) d=/tmp/base28;; frames) d=/tmp/new28;; esac
  (cd $d && go run ./bench/cmd/wardenbench -no-nginx -only go-floor,warden-masking,warden-full -profile-all -reps 1 -out $R/profiles/$v > $R/profiles/$v.log 2>&1)
done
echo DONE > /tmp/ab28.done
