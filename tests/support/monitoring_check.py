#!/usr/bin/env python3
"""Checks packaging/grafana/etld.json and packaging/prometheus/etld-alerts.yml against a scrape.

Usage: monitoring_check.py SCRAPE DASHBOARD RULES DASHBOARD_RULES_OUT

Validates the dashboard's structure (a title and uid, unique panel ids, panels on the 24-column
grid, every non-row panel with a datasource and targets that each have a refId and a non-empty
expr), then takes the PromQL of every panel target, every templating query and every rule's
`expr:` and checks, loosely (by their etld_* tokens), that each metric name they use is the
name of a sample in SCRAPE (the text of a /metrics answer): so a histogram is used through its
_bucket/_sum/_count series and a counter by its _total name, as Prometheus stores them.
Writes the dashboard's expressions, Grafana variables replaced, as recording rules to
DASHBOARD_RULES_OUT so that `promtool check rules` parses them as PromQL.
Prints one line per metric name checked; exits 1 naming each problem and where it is.
"""
import json
import re
import sys

TOKEN = re.compile(r"\betld_[A-Za-z0-9_]*")
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)[{ ]")
problems = []


def dashboard_exprs(path):
    dash = json.load(open(path))
    for key in ("title", "uid", "panels"):
        if not dash.get(key):
            problems.append(f"{path}: no {key}")
    ids = set()
    for panel in dash.get("panels", []):
        where = f"{path}: panel {panel.get('id')} '{panel.get('title')}'"
        if not panel.get("title") or not panel.get("type"):
            problems.append(f"{where}: no title or type")
        if panel.get("id") in ids:
            problems.append(f"{where}: id used twice")
        ids.add(panel.get("id"))
        pos = panel.get("gridPos", {})
        if not all(isinstance(pos.get(k), int) for k in "hwxy") or pos["x"] + pos["w"] > 24:
            problems.append(f"{where}: gridPos {pos} is not on the 24-column grid")
        if panel.get("type") == "row":
            continue
        if not panel.get("datasource"):
            problems.append(f"{where}: no datasource")
        targets = panel.get("targets") or []
        if not targets:
            problems.append(f"{where}: no targets")
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs) or not all(refs):
            problems.append(f"{where}: refIds missing or repeated: {refs}")
        for t in targets:
            if not str(t.get("expr", "")).strip():
                problems.append(f"{where}: target {t.get('refId')} has no expr")
            else:
                yield where, t["expr"]
    for var in dash.get("templating", {}).get("list", []):
        query = var.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if var.get("type") == "query":
            yield f"{path}: variable {var.get('name')}", query


def rule_exprs(path):
    """The `expr:` values of a rules file: one line, or a `|`/`>` block of deeper lines."""
    lines = open(path).read().splitlines()
    alert = "?"
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)-?\s*(alert|record):\s*(\S+)", lines[i])
        if m:
            alert = m.group(3)
        m = re.match(r"^(\s*)expr:\s*(.*)$", lines[i])
        i += 1
        if not m:
            continue
        indent, rest = len(m.group(1)), m.group(2).strip()
        if rest and rest[0] not in "|>":
            yield f"{path}: {alert}", rest.strip("'\"")
            continue
        block = []
        while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
            block.append(lines[i].strip())
            i += 1
        yield f"{path}: {alert}", " ".join(block)


def main():
    scrape, dashboard, rules, out = sys.argv[1:5]
    samples = set()
    for line in open(scrape):
        m = SAMPLE.match(line)
        if m and not line.startswith("#"):
            samples.add(m.group(1))
    dash = list(dashboard_exprs(dashboard))
    rule = list(rule_exprs(rules))
    if not rule:
        problems.append(f"{rules}: no expr found")
    used = {}
    for where, expr in dash + rule:
        names = TOKEN.findall(expr)
        if not names and "variable" not in where:
            problems.append(f"{where}: uses no etld metric: {expr}")
        for name in names:
            used.setdefault(name, where)
    for name in sorted(used):
        print(name)
        if name not in samples:
            problems.append(f"{used[name]}: {name} is not in the scrape of a running etld")
    grafana = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h", "$job": ".*", "$pipeline": ".*"}
    recording = []
    for n, (where, expr) in enumerate(dash):
        for var, value in grafana.items():
            expr = expr.replace(var, value)
        # A variable's label_values(SELECTOR, LABEL) is Grafana's, not PromQL: parse its selector.
        expr = re.sub(r"^label_values\((.*),\s*\w+\)$", r"\1", expr)
        if "$" in expr:
            problems.append(f"{where}: unknown Grafana variable in {expr}")
        recording.append({"record": f"dashboard:expr_{n}", "expr": expr})
    with open(out, "w") as f:
        json.dump({"groups": [{"name": "dashboard", "rules": recording}]}, f, indent=1)
    for p in problems:
        print(p, file=sys.stderr)
    sys.exit(1 if problems else 0)


main()
