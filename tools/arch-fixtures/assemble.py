#!/usr/bin/python3
"""Write expected.json of one fixture from spec.json and dump_logits' output.

Usage: assemble.py FIXTURE_DIR DUMP_PREFIX SOURCE_DESCRIPTION [CROSS_PREFIX CROSS_DESCRIPTION]

With CROSS_PREFIX (another implementation's dump of the same model and tokens) the largest
difference of its logits, relative to the largest |logit|, and whether its greedy continuation
is the same, are recorded under "cross_check".

Also runs hf_reference.py (float64, from the HF folder) and records how far llama.cpp's logits
are from it, with a suggested comparison tolerance. Checks that no greedy step has a near-tie between its two best tokens, so that a 1e-3
relative error in a runtime cannot flip the continuation: the margin must be at least
MIN_MARGIN (absolute, in logits). The smallest margin over the evaluated positions is recorded
too (those are compared as numbers, an argmax there does not matter).
"""

import json
import os
import re
import shutil
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import hf_reference  # noqa: E402

MIN_MARGIN = 0.1


def main():
    d, prefix, source = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
    cross = sys.argv[4:6] if len(sys.argv) >= 6 else None
    with open(os.path.join(d, "spec.json")) as f:
        spec = json.load(f)
    with open(prefix + ".json") as f:
        dump = json.load(f)
    assert dump["tokens"] == spec["tokens"]
    n, v = len(spec["tokens"]), dump["n_vocab"]
    size = os.path.getsize(prefix + ".logits.f32")
    assert size == 4 * n * v, (size, n, v)
    shutil.copyfile(prefix + ".logits.f32", os.path.join(d, "logits.f32"))
    worst = min(dump["greedy_top1_margin"])
    if worst < MIN_MARGIN:
        sys.exit(f"{d}: greedy top-1 margin {worst:.4g} < {MIN_MARGIN}: near-tie, change the seed or the weights")
    logits = np.fromfile(prefix + ".logits.f32", dtype="<f4").reshape(n, v)
    check = None
    if cross:
        with open(cross[0] + ".json") as f:
            other = json.load(f)
        o = np.fromfile(cross[0] + ".logits.f32", dtype="<f4").reshape(n, v)
        check = {
            "against": cross[1],
            "max_abs_diff_over_max_abs_logit": float(f"{np.abs(o - logits).max() / np.abs(logits).max():.3g}"),
            "same_greedy_continuation": other["continuation"] == dump["continuation"],
        }
    # the same model in float64 from the HF folder (hf_reference.py): how far llama.cpp's
    # shortcuts (F16 K/V cache in ik_llama.cpp, ggml's F16 GELU table) are from exact math
    cfg = json.load(open(os.path.join(d, "hf", "config.json")))
    weights = hf_reference.load_safetensors(os.path.join(d, "hf", "model.safetensors"))
    exact = hf_reference.forward(cfg, weights, spec["tokens"])
    deviation = float(np.abs(logits - exact).max() / np.abs(exact).max())
    seq = list(spec["tokens"])
    for _ in dump["continuation"]:
        seq.append(int(np.argmax(hf_reference.forward(cfg, weights, seq)[-1])))
    exact_check = {
        "max_abs_diff_over_max_abs_logit": float(f"{deviation:.3g}"),
        "same_greedy_continuation": seq[len(spec["tokens"]) :] == dump["continuation"],
    }
    if not exact_check["same_greedy_continuation"] or deviation > 5e-3:
        sys.exit(f"{d}: llama.cpp and the float64 HF reference disagree ({exact_check})")
    # a tolerance with room for both llama.cpp's and a float32 runtime's rounding
    tolerance = max(1e-3, float(f"{2 * deviation:.1g}"))
    expected = {
        "family": spec["family"],
        "source": source,
        "kv_cache": dump.get("kv_type", "f32"),
        "n_ctx": spec["n_ctx"],
        "tokens": spec["tokens"],
        "logits": {
            "file": "logits.f32",
            "dtype": "float32 little-endian",
            "shape": [n, v],
            "layout": "row-major, row i = logits after tokens[0..i]",
        },
        "greedy": {"prompt": spec["tokens"], "continuation": dump["continuation"]},
        "min_greedy_top1_margin": round(worst, 4),
        "min_top1_margin_over_tokens": round(min(dump["top1_margin"]), 4),
        "features": spec["features"],
    }
    expected["hf_float64_reference"] = exact_check
    expected["suggested_tolerance"] = tolerance
    if check:
        expected["cross_check"] = check
    text = json.dumps(expected, indent=1)
    # one line per list of numbers
    text = re.sub(r"\[\s*(-?[0-9][0-9.e+-]*(?:,\s*-?[0-9][0-9.e+-]*)*)\s*\]",
                  lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]", text)
    with open(os.path.join(d, "expected.json"), "w") as f:
        f.write(text + "\n")
    os.remove(os.path.join(d, "spec.json"))
    print(f"{os.path.basename(d)}: {n} positions, greedy margin >= {worst:.3f}, continuation {dump['continuation']}"
          + (f", cross-check {check}" if check else ""))


if __name__ == "__main__":
    main()
