#!/usr/bin/env python3
"""Runs the dashboard's PromQL on a real Prometheus that scrapes a running etld.

Usage: dashboard_queries.py PROMETHEUS_URL DASHBOARD_RULES

DASHBOARD_RULES is what monitoring_check.py writes: the dashboard's expressions, Grafana
variables replaced, as recording rules. Each expression must evaluate without error and, unless
it filters with a comparison (`> 0`: empty when nothing happens), return at least one series, so
that a panel would show the running pipeline. Prints one line per expression; exits 1 naming
each that fails.
"""
import json
import sys
import urllib.parse
import urllib.request


def query(base, expr):
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:
            return json.load(answer)
    except urllib.error.HTTPError as e:
        return json.load(e)


def main():
    base, path = sys.argv[1:3]
    failed = 0
    for rule in json.load(open(path))["groups"][0]["rules"]:
        expr = rule["expr"]
        answer = query(base, expr)
        series = answer.get("data", {}).get("result", [])
        filtered = any(op in expr for op in ("> 0", ">= ", "== ", "< "))
        if answer.get("status") != "success":
            print(f"FAIL {expr}: {answer.get('error')}")
            failed += 1
        elif not series and not filtered:
            print(f"FAIL {expr}: no series")
            failed += 1
        else:
            print(f"{len(series)} series: {expr}")
    sys.exit(1 if failed else 0)


main()
