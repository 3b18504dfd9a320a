#!/usr/bin/env python3
"""Strict checker of the Prometheus text exposition format 0.0.4 (what /metrics serves).

Reads the exposition on stdin. Exits 1 naming the first offending line when:
a line is neither a HELP/TYPE comment nor a sample; a name or label is malformed; a label value
has a bad escape; a family's samples are not contiguous or come before its TYPE; a TYPE or
HELP repeats; a series repeats; a counter is negative; a histogram lacks le="+Inf", has
buckets that are not cumulative, or its +Inf bucket differs from its _count.
Otherwise prints every sample as `name{k="v",...} value` with labels sorted, one per line.
"""
import math
import re
import sys

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
VALUE = r"(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?|Inf)|NaN)"
SAMPLE = re.compile(rf"^({NAME})(?:\{{(.*)\}})? ({VALUE})(?: (-?\d+))?$")
PAIR = re.compile(rf'({LABEL})="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')


def fail(lineno, line, why):
    print(f"line {lineno}: {why}: {line!r}", file=sys.stderr)
    sys.exit(1)


def parse_labels(text, lineno, line):
    labels, pos = {}, 0
    while pos < len(text):
        m = PAIR.match(text, pos)
        if not m:
            fail(lineno, line, "malformed labels")
        if m.group(1) in labels:
            fail(lineno, line, f"label {m.group(1)} repeated")
        labels[m.group(1)] = m.group(2)
        pos = m.end()
        if m.group(3) == "," and pos == len(text):
            pass  # a trailing comma is allowed
    return labels


def family_of(name, types):
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)]
        if name.endswith(suffix) and types.get(base) in ("histogram", "summary"):
            return base
    return name


def main():
    types, helps, done, series, out = {}, set(), set(), set(), []
    hist = {}  # (family, labels without le) -> {"buckets": [(le, v)], "count": v}
    current = None
    for lineno, line in enumerate(sys.stdin.read().split("\n"), 1):
        if line == "":
            continue
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not re.fullmatch(NAME, name):
                    fail(lineno, line, "bad metric name")
                if parts[1] == "TYPE":
                    if len(parts) != 4 or parts[3] not in ("counter", "gauge", "histogram", "summary", "untyped"):
                        fail(lineno, line, "bad TYPE")
                    if name in types:
                        fail(lineno, line, "TYPE repeated")
                    if name in done:
                        fail(lineno, line, "TYPE after the family's samples")
                    types[name] = parts[3]
                else:
                    if name in helps:
                        fail(lineno, line, "HELP repeated")
                    helps.add(name)
                if current is not None and current != name:
                    done.add(current)
                current = name
            continue
        m = SAMPLE.match(line)
        if not m:
            fail(lineno, line, "not a sample")
        name, labels = m.group(1), parse_labels(m.group(2) or "", lineno, line)
        value = float(m.group(3).replace("Inf", "inf"))
        fam = family_of(name, types)
        if fam not in types:
            fail(lineno, line, "sample without a TYPE")
        if fam != current:
            if fam in done:
                fail(lineno, line, "family's samples not contiguous")
            if current is not None:
                done.add(current)
            current = fam
        key = (name, tuple(sorted(labels.items())))
        if key in series:
            fail(lineno, line, "series repeated")
        series.add(key)
        if types[fam] == "counter" and not value >= 0:
            fail(lineno, line, "negative counter")
        if types[fam] == "histogram":
            base = tuple(sorted((k, v) for k, v in labels.items() if k != "le"))
            h = hist.setdefault((fam, base), {"buckets": [], "count": None})
            if name.endswith("_bucket"):
                if "le" not in labels:
                    fail(lineno, line, "bucket without le")
                h["buckets"].append((float(labels["le"].replace("Inf", "inf")), value))
            elif name.endswith("_count"):
                h["count"] = value
        out.append(name + "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "} " + m.group(3))
    for (fam, base), h in hist.items():
        b = h["buckets"]
        if not b or b[-1][0] != math.inf:
            fail(0, fam, "histogram without a +Inf bucket")
        if any(b[i][0] >= b[i + 1][0] or b[i][1] > b[i + 1][1] for i in range(len(b) - 1)):
            fail(0, fam, "histogram buckets not ascending and cumulative")
        if h["count"] != b[-1][1]:
            fail(0, fam, "histogram _count differs from its +Inf bucket")
    print("\n".join(out))


main()
