#!/bin/bash
# second text: first 8192 tokens of tinystories_valid.txt (paragraph documents)
cd /tmp/ladder
for f in "$@"; do
  out=ev-tiny-$(basename ${f%.*}).json
  [ -s $out ] && continue
  ./novaq eval $f --against /work/wt/ladder/resources/models/kjv-llama-7m --text /work/shared/text/tinystories_valid.txt --split paragraphs --max-tokens 8192 --threads 1 --decode --json > $out.tmp 2> $out.err && mv $out.tmp $out
done
