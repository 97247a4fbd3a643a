#!/usr/bin/python3
"""Write tests/data/architectures/perplexity.json from llama-perplexity's outputs.

Usage: record_perplexity.py OUT.json COMMIT "ARGS" MODEL1 OUTPUT1 [MODEL2 OUTPUT2 ...]
"""

import json
import re
import sys


def main():
    out, commit, args = sys.argv[1:4]
    runs = []
    for model, path in zip(sys.argv[4::2], sys.argv[5::2]):
        text = open(path).read()
        # "Final estimate: PPL = X +/- Y" (llama.cpp) or "... PPL over C chunks for n_ctx=N = X +/- Y"
        m = re.search(r"Final estimate: PPL(?: over \d+ chunks for n_ctx=\d+)? = ([0-9.]+) \+/- ([0-9.]+)", text)
        if not m:
            sys.exit(f"{path}: no final estimate")
        chunks = len(re.findall(r"\[\d+\][0-9.]+,", text))
        n_ctx = int(re.search(r"-c (\d+)", args).group(1))
        runs.append(
            {
                "model": model,
                "command": f"llama-perplexity -m {model} -f tests/data/text/tinystories_valid.txt {args}",
                "n_ctx": n_ctx,
                "chunks": chunks,
                "perplexity": float(m.group(1)),
                "plus_minus": float(m.group(2)),
            }
        )
        print(model, "perplexity", m.group(1), "over", chunks, "chunks")
    doc = {
        "tool": f"llama-perplexity, {commit} (CPU, 1 thread, F32 K/V cache, no flash attention)",
        "text": "tests/data/text/tinystories_valid.txt",
        "protocol": "llama.cpp's: tokens = BOS + the whole file; chunks of n_ctx with BOS first; second half scored",
        "runs": runs,
    }
    with open(out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
