#!/bin/bash
# issue-pre (frame file preallocated, decision 044) vs frames (54f8b12), alternated twice
set -u
R=/work/main/bench/results/2026-12-01-quiet-stop28/prealloc
for i in 1 2; do
  for v in prealloc frames; do
    case $v in prealloc) d=/tmp/pre28;; frames) d=/tmp/new28;; esac
    (cd $d && go run ./bench/cmd/wardenbench -no-nginx -only go-floor,warden-masking,warden-full -reps 2 -out $R/$v-$i > $R/$v-$i.log 2>&1)
  done
done
echo DONE > /tmp/pre28.done
