#!/bin/bash
# Regenerates tests/data/architectures/ from scratch with two llama.cpp source trees and builds.
#
#   tools/arch-fixtures/regenerate.sh IK_SOURCE IK_BUILD LLAMA_SOURCE LLAMA_BUILD [FAMILY...]
#
# IK_SOURCE/IK_BUILD:       ik_llama.cpp (the snapshot of Aug 2026): its converter makes every
#                           GGUF (through convert.py) and its library evaluates the families the
#                           older llama.cpp lacks (qwen3, gemma3), with an F16 K/V cache.
# LLAMA_SOURCE/LLAMA_BUILD: llama.cpp (the snapshot of Feb 2025): its library evaluates every
#                           other family with an F32 K/V cache, and its llama-perplexity gives
#                           the perplexity record. Why two: see NOTES.md ("reference").
# A build directory holds libllama.so and libggml*.so somewhere below it and, for llama.cpp,
# bin/llama-perplexity. Each source tree may hold a file .novaq-commit with its commit id.
# Needs Debian's /usr/bin/python3 with python3-numpy, python3-torch, python3-sentencepiece,
# python3-tqdm, and g++. See README.md next to this script.
set -euo pipefail

ik_src=$(realpath "$1")
ik_build=$(realpath "$2")
up_src=$(realpath "$3")
up_build=$(realpath "$4")
shift 4
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
out="$repo/tests/data/architectures"
tok="$repo/tests/data/models/stories260K/tok512.model"
py=/usr/bin/python3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" # llama.cpp tools may leave log files in the working directory
ik_only=" qwen3 gemma3 "

commit_of() { if [ -f "$1/.novaq-commit" ]; then cat "$1/.novaq-commit"; else echo unknown; fi; }
ik_commit=$(commit_of "$ik_src")
up_commit=$(commit_of "$up_src")

# 1. our program against each library (public llama.h API only, no common/)
compile() { # SOURCE BUILD OUTPUT
    local libdirs=() rpath="" d
    while read -r d; do libdirs+=("-L$d"); rpath="$rpath:$d"; done < <(find "$2" -name 'lib*.so' -printf '%h\n' | sort -u)
    local api=()
    if grep -q "LLAMA_API void llama_model_free" "$1/include/llama.h"; then api=(-DNOVAQ_LLAMA_VOCAB_API); fi
    local libs=(-lllama -lggml)
    if find "$2" -name 'libggml-base.so' | grep -q .; then libs+=(-lggml-base); fi
    # --allow-shlib-undefined: the ik build leaves its flash-attention kernels out (never called)
    g++ -std=c++17 -O2 -Wall -Wextra "${api[@]}" -I"$1/include" -I"$1/ggml/include" "$here/dump_logits.cpp" \
        "${libdirs[@]}" "${libs[@]}" -Wl,--allow-shlib-undefined -Wl,-rpath,"${rpath#:}" -o "$3"
}
compile "$ik_src" "$ik_build" "$work/dump_ik"
compile "$up_src" "$up_build" "$work/dump_up"

# 2. the Hugging Face folders
$py "$here/make_tiny_models.py" "$work/models" "$tok" "$@"

# 3. per family: convert, evaluate, assemble
for d in "$work"/models/*/; do
    d=${d%/}
    name=$(basename "$d")
    $py "$here/convert.py" "$ik_src" "$d/hf" "$d/model.gguf" > "$work/$name.convert.log" 2>&1 ||
        { cat "$work/$name.convert.log"; exit 1; }
    read -r n_ctx tokens n_predict < <($py -c "
import json; s=json.load(open('$d/spec.json'))
print(s['n_ctx'], ','.join(map(str,s['tokens'])), s['n_predict'])")
    "$work/dump_ik" "$d/model.gguf" "$n_ctx" "$tokens" "$n_predict" "$work/$name.ik" f16
    cmd="dump_logits $name/model.gguf $n_ctx TOKENS $n_predict"
    if [[ "$ik_only" == *" $name "* ]]; then
        $py "$here/assemble.py" "$d" "$work/$name.ik" \
            "ik_llama.cpp commit $ik_commit (llama.cpp of Feb 2025 lacks $name); GGUF: tools/arch-fixtures/convert.py with ik_llama.cpp's convert_hf_to_gguf.py --outtype f32; logits: tools/arch-fixtures/$cmd f16 (1 thread, F16 K/V cache, no flash attention)"
    else
        "$work/dump_up" "$d/model.gguf" "$n_ctx" "$tokens" "$n_predict" "$work/$name.up" f32
        $py "$here/assemble.py" "$d" "$work/$name.up" \
            "llama.cpp commit $up_commit; GGUF: tools/arch-fixtures/convert.py with ik_llama.cpp's ($ik_commit) convert_hf_to_gguf.py --outtype f32; logits: tools/arch-fixtures/$cmd f32 (1 thread, F32 K/V cache, no flash attention)" \
            "$work/$name.ik" "ik_llama.cpp $ik_commit, F16 K/V cache"
    fi
    rm -rf "${out:?}/$name"
    mkdir -p "$out/$name"
    cp -r "$d"/. "$out/$name/"
done

# 4. llama-perplexity, llama.cpp's own protocol (BOS + whole file, second half of each chunk),
#    on the llama2 fixture (random weights) and on stories260K (a real model, same tokenizer)
ppl="$up_build/bin/llama-perplexity"
if [ -x "$ppl" ] && [ -f "$out/llama2/model.gguf" ]; then
    text="$repo/tests/data/text/tinystories_valid.txt"
    args=(-c 128 -b 128 --chunks 16 -t 1 -ctk f32 -ctv f32)
    pyargs=()
    for model in tests/data/architectures/llama2/model.gguf tests/data/models/stories260K/stories260K.gguf; do
        o="$work/ppl.$(basename "$(dirname "$model")").out"
        "$ppl" -m "$repo/$model" -f "$text" "${args[@]}" > "$o" 2>&1 || { cat "$o"; exit 1; }
        pyargs+=("$model" "$o")
    done
    $py "$here/record_perplexity.py" "$out/perplexity.json" "llama.cpp commit $up_commit" "${args[*]}" "${pyargs[@]}"
fi
# 5. each claimed feature, switched off, must move the logits (feature_checks.json)
if [ $# -eq 0 ]; then
    $py "$here/check_features.py" "$ik_src" "$work/dump_ik" "$work/dump_up" "$out/feature_checks.json"
fi
du -sh "$out"
