#!/usr/bin/python3
"""Write expected.json of one fixture from spec.json and dump_logits' output.

Usage: assemble.py FIXTURE_DIR DUMP_PREFIX SOURCE_DESCRIPTION

Checks that no greedy step has a near-tie between its two best tokens, so that a 1e-3
relative error in a runtime cannot flip the continuation: the margin must be at least
MIN_MARGIN (absolute, in logits). The smallest margin over the evaluated positions is recorded
too (those are compared as numbers, an argmax there does not matter).
"""

import json
import math
import os
import shutil
import sys

MIN_MARGIN = 0.1


def main():
    d, prefix, source = sys.argv[1], sys.argv[2], sys.argv[3]
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
    expected = {
        "family": spec["family"],
        "source": source,
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
    with open(os.path.join(d, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    os.remove(os.path.join(d, "spec.json"))
    print(f"{os.path.basename(d)}: {n} positions, greedy margin >= {worst:.3f}, continuation {dump['continuation']}")


if __name__ == "__main__":
    main()
