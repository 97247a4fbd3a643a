#!/bin/bash
# Regenerates tests/data/architectures/ from scratch with a llama.cpp source tree and its build.
#
#   tools/arch-fixtures/regenerate.sh LLAMA_CPP_SOURCE LLAMA_CPP_BUILD [FAMILY...]
#
# LLAMA_CPP_SOURCE: an exported llama.cpp (or ik_llama.cpp) tree (convert_hf_to_gguf.py,
#                   gguf-py/, include/, ggml/include/).
# LLAMA_CPP_BUILD:  its CMake build directory with libllama (src/libllama.so) and, for the
#                   perplexity record, bin/llama-perplexity.
# Needs Debian's /usr/bin/python3 with python3-numpy, python3-torch, python3-sentencepiece,
# python3-tqdm, and g++. See README.md next to this script.
set -euo pipefail

src=$(realpath "$1")
build=$(realpath "$2")
shift 2
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out="$repo/tests/data/architectures"
tok="$repo/tests/data/models/stories260K/tok512.model"
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

commit=unknown
if [ -f "$src/.novaq-commit" ]; then commit=$(cat "$src/.novaq-commit"); fi

# 1. our program against their library (no common/, so only the public llama.h API)
lib=$(dirname "$(find "$build" -name 'libllama.so' | head -1)")
ggml_lib=$(dirname "$(find "$build" -name 'libggml.so' | head -1)")
g++ -std=c++17 -O2 -Wall -Wextra -I"$src/include" -I"$src/ggml/include" "$here/dump_logits.cpp" \
    -L"$lib" -L"$ggml_lib" -lllama -lggml -Wl,-rpath,"$lib:$ggml_lib" -o "$work/dump_logits"

# 2. the Hugging Face folders
$py "$here/make_tiny_models.py" "$work/models" "$tok" "$@"

# 3. per family: convert, evaluate, assemble
for d in "$work"/models/*/; do
    name=$(basename "$d")
    $py "$here/convert.py" "$src" "$d/hf" "$d/model.gguf" > "$work/$name.convert.log" 2>&1 ||
        { cat "$work/$name.convert.log"; exit 1; }
    read -r n_ctx tokens n_predict < <($py -c "
import json,sys; s=json.load(open('$d/spec.json'))
print(s['n_ctx'], ','.join(map(str,s['tokens'])), s['n_predict'])")
    "$work/dump_logits" "$d/model.gguf" "$n_ctx" "$tokens" "$n_predict" "$work/$name.dump"
    $py "$here/assemble.py" "$d" "$work/$name.dump" \
        "llama.cpp: ik_llama.cpp commit $commit; convert: tools/arch-fixtures/convert.py (convert_hf_to_gguf.py --outtype f32); logits: tools/arch-fixtures/dump_logits $name/model.gguf $n_ctx TOKENS $n_predict (1 thread, F32 KV cache, no flash attention)"
    rm -rf "${out:?}/$name"
    mkdir -p "$out/$name"
    cp -r "$d"/. "$out/$name/"
done

# 4. llama-perplexity on the llama2 fixture (BOS + whole file, llama.cpp's protocol)
if [ -x "$build/bin/llama-perplexity" ] && [ -f "$out/llama2/model.gguf" ]; then
    "$build/bin/llama-perplexity" -m "$out/llama2/model.gguf" -f "$repo/tests/data/text/tinystories_valid.txt" \
        -c 128 -b 128 --chunks 16 -t 1 -fa off -ctk f32 -ctv f32 > "$work/ppl.out" 2> "$work/ppl.err" ||
        { cat "$work/ppl.err"; exit 1; }
    $py - "$work/ppl.out" "$out/llama2/perplexity.json" "$commit" <<'EOF'
import json, re, sys
text = open(sys.argv[1]).read()
m = re.search(r"Final estimate: PPL over (\d+) chunks for n_ctx=(\d+) = ([0-9.]+) \+/- ([0-9.]+)", text)
chunks = [float(x) for x in re.findall(r"\[\d+\]([0-9.]+),", text)]
json.dump({
    "tool": "llama-perplexity (ik_llama.cpp commit %s)" % sys.argv[3],
    "command": "llama-perplexity -m model.gguf -f tests/data/text/tinystories_valid.txt -c 128 -b 128 --chunks 16 -t 1 -fa off -ctk f32 -ctv f32",
    "text": "tests/data/text/tinystories_valid.txt",
    "n_ctx": int(m.group(2)), "chunks": int(m.group(1)),
    "perplexity": float(m.group(3)), "plus_minus": float(m.group(4)),
    "running_perplexity_per_chunk": chunks,
}, open(sys.argv[2], "w"), indent=1)
open(sys.argv[2], "a").write("\n")
print("perplexity", m.group(3), "over", m.group(1), "chunks")
EOF
fi
du -sh "$out"
