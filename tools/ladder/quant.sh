#!/bin/bash
# quantize with both tools, then dequantize to F32 with the same tool
cd /tmp/ladder
IK=/work/ref/ik_llama.cpp; ML=/work/ref/llama.cpp
for spec in "$@"; do
  tool=${spec%%:*}; t=${spec#*:}
  if [ $tool = ik ]; then Q="env LD_LIBRARY_PATH=$IK/build-fa/src:$IK/build-fa/ggml/src $IK/build-fa/bin/llama-quantize"; else Q="env LD_LIBRARY_PATH=$ML/build/bin $ML/build/bin/llama-quantize"; fi
  $Q --imatrix kjv.imatrix kjv-llama-7m-F16.gguf $tool-$t.gguf $t 1 > q-$tool-$t.log 2>&1 || { echo "FAIL $tool $t"; continue; }
  $Q --allow-requantize $tool-$t.gguf $tool-$t-f32.gguf F32 1 > dq-$tool-$t.log 2>&1 || echo "FAILDQ $tool $t"
  echo "$tool $t $(stat -c %s $tool-$t.gguf)"
done
