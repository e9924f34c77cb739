#!/usr/bin/env bash
# How these six runs were made: /tmp/rec/base was `git archive main` (60bcd04), /work/wt/rec this branch.
# 3 pairs, alternating order: main (/tmp/rec/base) and the branch (/work/wt/rec)
for r in 1 2 3; do
  order="base new"; [ $((r % 2)) -eq 0 ] && order="new base"
  for v in $order; do
    dir=/work/wt/rec; [ $v = base ] && dir=/tmp/rec/base
    (cd $dir && go run ./bench/cmd/wardenbench -no-nginx -short -only warden-full,warden-full+recording -out /tmp/rec-bench/$v-$r) > /tmp/rec/h-$v-$r.log 2>&1
    echo "$v $r rc=$?"
  done
done
