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
