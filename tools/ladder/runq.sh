#!/bin/bash
# runq.sh NAME "ARGS" ... : novaq local with ARGS -> nv-NAME.novaq, then eval on John (decoded)
cd /tmp/ladder
M=/work/wt/ladder/resources/models/kjv-llama-7m
while [ $# -gt 0 ]; do
  name=$1; args=$2; shift 2
  [ -s nv-$name.novaq ] || { /usr/bin/time -f "%e s" ./novaq local $M $args --threads 1 --json --output nv-$name.novaq > lc-$name.json 2> lc-$name.err || { echo FAIL $name; continue; }; }
  [ -s ev-john-nv-$name.json ] || ./novaq eval nv-$name.novaq --against $M --text /work/shared/text/kjv_john.txt --threads 1 --decode --json > ev-john-nv-$name.json 2> ev-john-nv-$name.err
  echo "$name $(stat -c %s nv-$name.novaq) $(python3 -c "import json;d=json.load(open('ev-john-nv-$name.json'));print(d['kl'],d['top1'],d['perplexity'])")"
done
