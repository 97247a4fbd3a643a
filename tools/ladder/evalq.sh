#!/bin/bash
# evalq.sh TEXT TAG files...: novaq eval of each F32 file against the original, JSON to ev-TAG-<file>.json (TAG tiny: 8,192 tokens by paragraphs)
cd /tmp/ladder
N=${NOVAQ:-/work/main/build/ci/app/cli/novaq}
M=${MODEL:-/work/main/resources/models/kjv-llama-7m}
TEXT=$1; TAG=$2; shift 2
for f in "$@"; do
  out=ev-$TAG-$(basename $f .gguf).json
  [ -s $out ] && continue
  if [ $TAG = tiny ]; then extra="--split paragraphs --max-tokens 8192"; else extra=""; fi
  $N eval $f --against $M --text $TEXT $extra --threads 1 --json > $out.tmp 2> $out.err && mv $out.tmp $out
done
