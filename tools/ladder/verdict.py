#!/usr/bin/env python3
"""The bar of issue 18, checked from ladder.csv: for every rival type, the NOVAQ file of the
least KL among those no larger than it, on John and on the second text (TinyStories).

Usage: python3 tools/ladder/verdict.py [tools/ladder/ladder.csv]
Prints one line per rival and, last, how many are beaten on each text; exit status 1 when a
rival is not beaten on a text where both sides were measured.
"""
import csv
import os
import sys

src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(os.path.abspath(__file__)), "ladder.csv")
rows = list(csv.DictReader(open(src)))
ours = [r for r in rows if r["tool"] == "NOVAQ"]
rivals = sorted((r for r in rows if r["tool"] != "NOVAQ"), key=lambda r: int(r["bytes"]))
beaten = {"john": 0, "tiny": 0}
measured = {"john": 0, "tiny": 0}
lost = 0
for r in rivals:
    line = f"{r['tool']:13} {r['type']:8} {int(r['bytes']):>9,}"
    for text in ("john", "tiny"):
        if not r[f"kl_{text}"]:
            line += f" | {text}: rival not measured"
            continue
        fits = [o for o in ours if int(o["bytes"]) <= int(r["bytes"]) and o[f"kl_{text}"]]
        if not fits:
            line += f" | {text}: no NOVAQ file this small"
            lost += 1
            continue
        best = min(fits, key=lambda o: float(o[f"kl_{text}"]))
        theirs, mine = float(r[f"kl_{text}"]), float(best[f"kl_{text}"])
        measured[text] += 1
        ok = mine < theirs
        beaten[text] += ok
        lost += not ok
        line += (f" | {text}: {theirs:.3g} vs {mine:.3g} ({theirs / mine:.1f}x) {best['type']} "
                 f"{int(best['bytes']):,}{'' if ok else '  NOT BEATEN'}")
    print(line)
print(f"beaten on John: {beaten['john']} of {measured['john']}; on TinyStories: {beaten['tiny']} of {measured['tiny']}")
sys.exit(1 if lost else 0)
