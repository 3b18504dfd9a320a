#!/usr/bin/env bash
# The benchmark harness cannot rot silently: bench/run --quick runs every scenario at small sizes
# against the real broker and PostgreSQL, with the binaries of this build, and every scenario must
# leave its CSV and SVG with positive, finite numbers, and every ratio with a target a value
# (or, for exactly_once and the Kafka Connect baseline, the reason it is not available).
# Speed targets are not asserted here: they live in bench/ and docs/performance.md.
set -euo pipefail
src=${ETLD_SOURCE_DIR:?}
etld=${ETLD_BINARY:?}
build=$(dirname "$etld")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

"$src/bench/run" --quick --build-dir "$build" --results "$out" --keep-services >"$out/stdout" 2>"$out/stderr" || {
  echo "FAIL: bench/run --quick exited non-zero" >&2
  tail -n 40 "$out/stderr" "$out/stdout" >&2
  exit 1
}
python3 - "$out" <<'PY'
import csv, json, math, os, sys
out = sys.argv[1]
failures = []
for s in ["engine", "e2e", "source", "backpressure", "latency", "batch", "window", "avro", "scale", "memory"]:
    for ext in ["csv", "svg"]:
        p = os.path.join(out, f"{s}.{ext}")
        if not os.path.exists(p) or os.path.getsize(p) == 0:
            failures.append(f"{s}.{ext} missing or empty")
    p = os.path.join(out, f"{s}.csv")
    if os.path.exists(p):
        rows = list(csv.DictReader(open(p)))
        if not rows:
            failures.append(f"{s}.csv has no measurements")
        for r in rows:
            v = float(r["value"])
            if not math.isfinite(v) or v <= 0:
                failures.append(f"{s}: {r['case']} / {r['contender']} / {r['metric']} = {r['value']}")
results = json.load(open(os.path.join(out, "results.json")))
if results["errors"]:
    failures += results["errors"]
for r in results["ratios"]:
    if r["median"] is None and not r["note"]:
        failures.append(f"ratio without a value or a reason: {r['name']}")
    if r["median"] is not None and not (math.isfinite(r["median"]) and r["median"] > 0):
        failures.append(f"ratio {r['name']} = {r['median']}")
print(f"bench smoke: {len(results['ratios'])} ratios, {len(results['measurements'])} measurements, "
      f"{results['meta']['total_seconds']}s")
if failures:
    print("\n".join("FAIL: " + f for f in failures), file=sys.stderr)
    sys.exit(1)
PY

# bench/latency_probe.py (where a row's latency goes; docs/performance.md) on the services bench/run
# left running: every row produced is accounted for, and the parts of its latency add up.
eval "$("$src/scripts/dev-env" env)"
export KAFKA_BROKERS PG_DSN
"$src/bench/latency_probe.py" --rate 2000 --seconds 3 --build-dir "$build" >"$out/probe.json" 2>"$out/probe.err" || {
  echo "FAIL: bench/latency_probe.py exited non-zero" >&2
  cat "$out/probe.err" >&2
  exit 1
}
python3 - "$out/probe.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
failures = []
if d["rows"] != 6000:
    failures.append(f"rows {d['rows']}, expected 6000")
if not 0 < d["p50_ms"] <= d["p99_ms"] <= d["max_ms"]:
    failures.append(f"percentiles out of order: {d['p50_ms']} {d['p99_ms']} {d['max_ms']}")
if not (d["before_copy_p99_ms"] > 0 and d["inside_copy_p99_ms"] >= 0
        and d["before_copy_p99_ms"] <= d["max_ms"] and d["inside_copy_p99_ms"] <= d["max_ms"]):
    failures.append(f"parts of the latency do not fit in it: {d}")
if d["copies"] < 2 or len(d["p99_by_second_ms"]) < 3:
    failures.append(f"expected several COPYs over 3 seconds: {d['copies']} copies, {d['p99_by_second_ms']}")
print(f"latency probe: {d['rows']} rows, p99 {d['p99_ms']:.0f} ms in {d['copies']} COPYs")
if failures:
    print("\n".join("FAIL: " + f for f in failures), file=sys.stderr)
    sys.exit(1)
PY
