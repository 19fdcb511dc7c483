#!/usr/bin/python3
"""Extracts the request inputs of llhttp's own Markdown tests (test/request/*.md in nodejs/llhttp, MIT) into
llhttp-requests.txt: one line per test, "<file>:<line> <hex of the bytes>". Only the inputs are taken (the
expectations belong to llhttp's lenient and strict modes; GatehouseHTTP1's differential test runs each input
through llhttp-in-NIO, h11 and Gatehouse instead). The input transformation follows llhttp's test/md-test.ts.

usage: make_llhttp_vectors.py LLHTTP_CHECKOUT > llhttp-requests.txt
"""
import json
import os
import re
import sys

root = sys.argv[1]
out = []
for name in sorted(os.listdir(os.path.join(root, "test/request"))):
    if not name.endswith(".md"):
        continue
    lines = open(os.path.join(root, "test/request", name), encoding="utf-8").read().split("\n")
    meta = None
    i = 0
    while i < len(lines):
        m = re.match(r"<!-- meta=(.*) -->", lines[i])
        if m:
            meta = json.loads(m.group(1))
        if lines[i].strip() == "```http" and meta is not None:
            start = i + 1
            j = start
            while lines[j].strip() != "```":
                j += 1
            text = "\n".join(lines[start:j]) + "\n"
            i = j
            kind = meta.get("type", "")
            meta = None
            if not kind.startswith("request") or "${" in text:
                i += 1
                continue
            text = re.sub(r"\n$", "", text)
            text = re.sub(r"\\(\r\n|\r|\n)", "", text)
            text = re.sub(r"\r\n|\r|\n", "\r\n", text)
            text = text.replace("\\r", "\r").replace("\\n", "\n").replace("\\t", "\t").replace("\\f", "\f")
            text = re.sub(r"\\x([0-9a-fA-F]+)", lambda m: chr(int(m.group(1), 16)), text)
            text = re.sub(r"\\([0-7]{1,3})", lambda m: chr(int(m.group(1), 8)), text)
            data = text.encode("latin-1", errors="strict") if all(ord(c) < 256 for c in text) else text.encode("utf-8")
            out.append(f"{name}:{start} {kind} {data.hex()}")
        i += 1
print("# llhttp " + open(os.path.join(root, "package.json")).read().split('"version": "')[1].split('"')[0]
      + " test/request inputs, made by make_llhttp_vectors.py")
print("\n".join(out))
