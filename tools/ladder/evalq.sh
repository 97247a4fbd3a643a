#!/bin/bash
# evalq.sh TEXT TAG files...: novaq eval each file against the original, JSON to ev-TAG-<file>.json
cd /tmp/ladder
N=/work/wt/ladder/build/ci/app/cli/novaq
TEXT=$1; TAG=$2; shift 2
for f in "$@"; do
  while [ ! -s "$f" ]; do sleep 5; done; sleep 2
  out=ev-$TAG-$(basename $f .gguf).json
  [ -s $out ] && continue
  $N eval $f --against /work/wt/ladder/resources/models/kjv-llama-7m --text $TEXT --threads 1 --json > $out.tmp 2> $out.err && mv $out.tmp $out
done
