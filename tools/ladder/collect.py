#!/usr/bin/env python3
"""Builds ladder.csv from the measurement directory of quant.sh / evalq.sh / runq.sh.

Usage: python3 tools/ladder/collect.py MEASUREMENT_DIR > tools/ladder/ladder.csv
Rows: every ik-TYPE.gguf with an ev-john-ik-TYPE-f32.json, every nv-NAME.novaq with an
ev-john-nv-NAME.json, plus fixed.csv (figures measured earlier and published in the README:
mainline llama.cpp's files and the calibrated --bits 1 ... 4 rows), which is copied as is.
"""
import csv
import glob
import json
import os
import sys

PARAMS = 6_819_072  # kjv-llama-7m
d = sys.argv[1]
here = os.path.dirname(os.path.abspath(__file__))
w = csv.writer(sys.stdout, lineterminator="\n")
w.writerow(["tool", "type", "bytes", "bpw", "kl_john", "top1_john", "ppl_john", "note"])
rows = list(csv.DictReader(open(os.path.join(here, "fixed.csv"))))
for r in rows:
    w.writerow([r["tool"], r["type"], r["bytes"], f"{int(r['bytes']) * 8 / PARAMS:.3f}", r["kl_john"],
                r["top1_john"], r["ppl_john"], r["note"]])


def ev(path):
    e = json.load(open(path))
    return f"{e['kl']:.6f}", f"{e['top1']:.4f}", f"{e['perplexity']:.3f}"


for g in sorted(glob.glob(os.path.join(d, "ik-*.gguf"))):
    t = os.path.basename(g)[3:-5]
    if t.endswith("-f32"):
        continue
    j = os.path.join(d, f"ev-john-ik-{t}-f32.json")
    if not os.path.exists(j):
        continue
    b = os.path.getsize(g)
    w.writerow(["ik_llama.cpp", t, b, f"{b * 8 / PARAMS:.3f}", *ev(j), "ik llama-quantize --imatrix"])
for g in sorted(glob.glob(os.path.join(d, "nv-*.novaq"))):
    n = os.path.basename(g)[3:-6]
    j = os.path.join(d, f"ev-john-nv-{n}.json")
    if not os.path.exists(j):
        continue
    args = json.load(open(os.path.join(d, f"lc-{n}.json"))).get("settings", {})
    b = os.path.getsize(g)
    label = ("--target-size " + n.split("t")[-1] if "t" in n else "--bits " + n[-1]) + (
        " --calibration" if n.startswith("c") else "")
    w.writerow(["NOVAQ", label, b, f"{b * 8 / PARAMS:.3f}", *ev(j), "this branch"])
