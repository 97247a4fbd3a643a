#!/bin/bash
# runq.sh NAME "ARGS" ... : novaq local with ARGS -> nv-NAME.novaq, then its eval on John and on the second text (TinyStories, 8,192 tokens by paragraphs)
cd /tmp/ladder
N=${NOVAQ:-/work/main/build/ci/app/cli/novaq}
M=${MODEL:-/work/main/resources/models/kjv-llama-7m}
while [ $# -gt 0 ]; do
  name=$1; args=$2; shift 2
  [ -s nv-$name.novaq ] || { /usr/bin/time -f "%e s" $N local $M $args --threads 1 --json --output nv-$name.novaq > lc-$name.json 2> lc-$name.err || { echo FAIL $name; continue; }; }
  [ -s ev-john-nv-$name.json ] || $N eval nv-$name.novaq --against $M --text /work/shared/text/kjv_john.txt --threads 1 --decode --json > ev-john-nv-$name.json 2> ev-john-nv-$name.err
  [ -s ev-tiny-nv-$name.json ] || $N eval nv-$name.novaq --against $M --text /work/shared/text/tinystories_valid.txt --split paragraphs --max-tokens 8192 --threads 1 --decode --json > ev-tiny-nv-$name.json 2> ev-tiny-nv-$name.err
  echo "$name $(stat -c %s nv-$name.novaq) $(python3 -c "import json;d=json.load(open('ev-john-nv-$name.json'));print(d['kl'],d['top1'],d['perplexity'])")"
done
