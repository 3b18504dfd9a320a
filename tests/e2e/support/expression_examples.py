#!/usr/bin/env python3
"""Checks every row of the example tables in docs/expressions.md against the real etld binary.

A table is checked when the line before it is `<!-- checked examples: ... -->`; each row is
record | expression | result, every cell a code span. For each row a pipeline stdin -> map
(set "." to the expression) -> stdout runs with the record as its one input line. The result is
either the JSON text stdout must print, `error: TEXT` (the event is dead-lettered: nothing is
printed and the rejection logged on stderr contains TEXT) or `syntax error: TEXT` (`etld
validate` fails and says TEXT). Usage: expression_examples.py ETLD DOC SCRATCH_DIR
"""
import concurrent.futures
import os
import re
import subprocess
import sys

MARKER = "<!-- checked examples:"


def code_span(cell):
    """The text of a Markdown code span (`x`, `` x ``), as CommonMark reads it."""
    cell = cell.strip()
    ticks = len(cell) - len(cell.lstrip("`"))
    if ticks == 0 or not cell.endswith("`" * ticks):
        raise ValueError("not a code span: " + cell)
    text = cell[ticks:-ticks]
    if len(text) >= 2 and text[0] == " " and text[-1] == " " and text.strip(" "):
        text = text[1:-1]
    return text


def rows(doc):
    lines = doc.splitlines()
    out = []
    for i, line in enumerate(lines):
        if not line.startswith(MARKER):
            continue
        # Skip the header and the |---| line.
        j = i + 3
        while j < len(lines) and lines[j].startswith("|"):
            # A table row: GFM splits cells on | not escaped as \|, then \| stands for |.
            cells = re.split(r"(?<!\\)\|", lines[j])[1:-1]
            cells = [c.replace("\\|", "|") for c in cells]
            if len(cells) != 3:
                raise ValueError(f"line {j + 1}: expected 3 cells, got {len(cells)}")
            out.append((j + 1, *(code_span(c) for c in cells)))
            j += 1
    return out


def pipeline(expression):
    body = "\n".join("        " + line for line in expression.splitlines())
    return f"""pipeline: expression_example
stages:
  in:
    type: stdin
  eval:
    type: map
    inputs: [in]
    set:
      ".": |-
{body}
  out:
    type: stdout
    inputs: [eval]
"""


def check(etld, scratch, row):
    line, record, expression, expected = row
    path = os.path.join(scratch, f"example_{line}.yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(pipeline(expression))
    where = f"docs/expressions.md:{line}: {expression!r} on {record}"
    if expected.startswith("syntax error: "):
        want = expected[len("syntax error: "):]
        r = subprocess.run([etld, "validate", path], capture_output=True, text=True, timeout=60)
        said = r.stdout + r.stderr
        if r.returncode == 0 or want not in said:
            return f"{where}: expected validate to fail with {want!r}, got rc {r.returncode}: {said.strip()}"
        return None
    r = subprocess.run([etld, "run", path], input=record + "\n", capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        return f"{where}: etld run failed (rc {r.returncode}): {r.stderr.strip()}"
    printed = r.stdout.rstrip("\n")
    if expected.startswith("error: "):
        want = expected[len("error: "):]
        rejected = [l for l in r.stderr.splitlines() if "rejected event" in l]
        if printed or not any(want in l for l in rejected):
            return f"{where}: expected a dead letter saying {want!r}, got stdout {printed!r}, log {rejected}"
        return None
    if printed != expected:
        return f"{where}: expected {expected}, got {printed!r} (stderr: {r.stderr.strip()})"
    return None


def main():
    etld, doc, scratch = sys.argv[1:4]
    with open(doc, encoding="utf-8") as f:
        examples = rows(f.read())
    if len(examples) < 50:
        print(f"only {len(examples)} examples found in {doc}: is the table marker still there?")
        return 1
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        failures = [m for m in pool.map(lambda r: check(etld, scratch, r), examples) if m]
    for m in failures:
        print("FAIL: " + m)
    print(f"{len(examples) - len(failures)} of {len(examples)} examples agree with the binary")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
