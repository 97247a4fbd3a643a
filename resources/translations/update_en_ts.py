#!/usr/bin/env python3
"""Regenerates novaq_studio_en.ts, the English plural forms of the app's counted texts.

The app's strings are English already; this file only gives tr("%n token(s)", nullptr, n)
its two English forms ("1 token", "2 tokens"). Run it from the repository root after adding
or changing such a text (needs qt6-l10n-tools):

    python3 resources/translations/update_en_ts.py

lupdate's own C++ parser does not follow `namespace novaq::ui {`, so the contexts it writes
lack the namespace that QObject::tr() uses at run time; they are qualified here. The forms
are made from the source: "(s)" dropped for one, "s" for more (every counted text says
"(s)"; a text that does not is named and the script fails).
"""
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

TS = "resources/translations/novaq_studio_en.ts"
LUPDATE = "/usr/lib/qt6/bin/lupdate"

subprocess.run([LUPDATE, "ui", "-extensions", "cpp,h", "-pluralonly", "-no-obsolete", "-locations", "none",
                "-source-language", "en", "-target-language", "en", "-ts", TS], check=True,
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
tree = ET.parse(TS)
for context in tree.getroot().iter("context"):
    name = context.find("name")
    if not name.text.startswith("novaq::"):
        name.text = "novaq::ui::" + name.text
    for message in context.iter("message"):
        source = message.find("source").text
        if "(s)" not in source:
            sys.exit(f"{TS}: a counted text without '(s)': {source!r}")
        translation = message.find("translation")
        translation.attrib.pop("type", None)
        for child in list(translation):
            translation.remove(child)
        for form in (source.replace("(s)", ""), source.replace("(s)", "s")):
            ET.SubElement(translation, "numerusform").text = form
ET.indent(tree)
with open(TS, "wb") as out:
    out.write(b'<?xml version="1.0" encoding="utf-8"?>\n<!DOCTYPE TS>\n')
    tree.write(out, encoding="utf-8", xml_declaration=False)
    out.write(b"\n")
