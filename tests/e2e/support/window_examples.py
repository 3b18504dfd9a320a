#!/usr/bin/env python3
"""Runs every worked example of docs/windows.md through the real etld binary.

An example starts at a line `<!-- window example: NAME -->`; the next three fenced code blocks
are the pipeline (YAML; its file source reads `events.jsonl`), the input (one JSON record per
line, written to events.jsonl) and the output stdout must print, line for line and in order. An
optional fourth block right after, fenced as ```text, lists what the log on stderr must contain
(one substring per line: the dead letters' reasons). Usage: window_examples.py ETLD DOC SCRATCH
"""
import os
import re
import subprocess
import sys

MARKER = re.compile(r"^<!-- window example: ([a-z0-9_-]+) -->$")
FENCE = re.compile(r"^```(\w*)$")


def blocks_after(lines, start):
    """Fenced blocks after line `start`, as (language, text, line number), until the next heading."""
    i = start + 1
    while i < len(lines):
        if lines[i].startswith("#") or MARKER.match(lines[i]):
            return
        m = FENCE.match(lines[i])
        if m:
            j = i + 1
            while j < len(lines) and lines[j] != "```":
                j += 1
            yield m.group(1), "\n".join(lines[i + 1:j]), i + 1
            i = j
        i += 1


def examples(doc):
    lines = doc.splitlines()
    for n, line in enumerate(lines):
        m = MARKER.match(line)
        if not m:
            continue
        found = list(blocks_after(lines, n))
        if len(found) < 3:
            raise ValueError(f"line {n + 1}: example {m.group(1)} needs pipeline, input and output blocks")
        log = found[3][1] if len(found) > 3 and found[3][0] == "text" else ""
        yield m.group(1), n + 1, found[0][1], found[1][1], found[2][1], log


def main():
    etld, doc_path, scratch = sys.argv[1:4]
    etld = os.path.abspath(etld)
    with open(doc_path, encoding="utf-8") as f:
        doc = f.read()
    failures, count = [], 0
    for name, line, pipeline, events, expected, log in examples(doc):
        count += 1
        where = os.path.join(scratch, name)
        os.makedirs(where, exist_ok=True)
        with open(os.path.join(where, "pipeline.yaml"), "w", encoding="utf-8") as f:
            f.write(pipeline + "\n")
        with open(os.path.join(where, "events.jsonl"), "w", encoding="utf-8") as f:
            f.write(events + "\n")
        run = subprocess.run([etld, "run", "pipeline.yaml"], cwd=where, capture_output=True, text=True, timeout=60)
        got = run.stdout.strip("\n").splitlines()
        want = expected.strip("\n").splitlines()
        problems = []
        if run.returncode != 0:
            problems.append(f"etld exited {run.returncode}")
        if got != want:
            problems.append("stdout:\n    " + "\n    ".join(got) + "\n  expected:\n    " + "\n    ".join(want))
        for needle in filter(None, log.splitlines()):
            if needle not in run.stderr:
                problems.append(f"stderr lacks {needle!r}")
        if problems:
            failures.append(f"{doc_path}:{line}: example {name}: " + "\n  ".join(problems) +
                            "\n  stderr:\n    " + "\n    ".join(run.stderr.splitlines()[-15:]))
    if count == 0:
        failures.append(f"{doc_path}: no examples found")
    for f in failures:
        print(f, file=sys.stderr)
    print(f"{count - len(failures)}/{count} examples agree")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
