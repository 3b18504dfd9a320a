#!/usr/bin/env bash
# scripts/pageviews, the record generator and independent reference of the window e2e test and
# the analytics demo, on its own: the reference of a small hand-made file equals the result
# worked out by hand (half-open minute windows, exact decimal sums, null revenue when no amount,
# distinct customers, top 3 with its tie-break), `check` accepts a dump equal to it and names
# each kind of difference in a tampered one, and the generator's records are out of order by at
# most the asked disorder, keyed over many customers, and the same for the same seed; dump reads
# a result table from PostgreSQL (scripts/dev-env) in the form check reads.
source "$(dirname "$0")/lib.sh"
pv="$src/scripts/pageviews"

cat >"$tmp/records.jsonl" <<'JSONL'
{"ts":"2026-12-06T12:00:59.999Z","page":"/cart","customer":"c1","product":"p2","amount":0.10}
{"ts":"2026-12-06T12:00:00.000Z","page":"/cart","customer":"c2","product":"p1","amount":0.20}
{"ts":"2026-12-06T12:01:00.000Z","page":"/cart","customer":"c1","product":"p3","amount":12345678901234.56}
{"ts":"2026-12-06T12:01:30.500Z","page":"/cart","customer":"c1","product":"p3","amount":0.01}
{"ts":"2026-12-06T12:00:10.000Z","page":"/","customer":"c3","product":"p9"}
{"ts":"2026-12-06T12:00:20.000Z","page":"/cart","customer":"c1","product":"p4","amount":0.30}
{"ts":"2026-12-06T12:00:30.000Z","page":"/cart","customer":"c3","product":"p4"}
{"ts":"2026-12-06T12:00:40.000Z","page":"/cart","customer":"c2","product":"p1"}
JSONL
cat >"$tmp/expected.jsonl" <<'JSONL'
{"window_start": "2026-12-06T12:00:00.000Z", "window_end": "2026-12-06T12:01:00.000Z", "page": "/", "views": 1, "revenue": null, "customers": 1, "top_products": [{"value": "p9", "count": 1}]}
{"window_start": "2026-12-06T12:00:00.000Z", "window_end": "2026-12-06T12:01:00.000Z", "page": "/cart", "views": 5, "revenue": "0.60", "customers": 3, "top_products": [{"value": "p1", "count": 2}, {"value": "p4", "count": 2}, {"value": "p2", "count": 1}]}
{"window_start": "2026-12-06T12:01:00.000Z", "window_end": "2026-12-06T12:02:00.000Z", "page": "/cart", "views": 2, "revenue": "12345678901234.57", "customers": 1, "top_products": [{"value": "p3", "count": 2}]}
JSONL
"$pv" reference "$tmp/records.jsonl" >"$tmp/reference.jsonl"
check "the reference of the hand-made file is the hand-worked result" diff "$tmp/expected.jsonl" "$tmp/reference.jsonl"

# A dump as the test takes it from PostgreSQL: epoch ms bounds, then the result columns.
cat >"$tmp/good.csv" <<'CSV'
1796558400000,1796558460000,/,1,,1,1,"[{""value"": ""p9"", ""count"": 1}]"
1796558400000,1796558460000,/cart,5,0.6,3,3,"[{""value"": ""p1"", ""count"": 2}, {""value"": ""p4"", ""count"": 2}, {""value"": ""p2"", ""count"": 1}]"
1796558460000,1796558520000,/cart,2,12345678901234.5700,1,2,"[{""value"": ""p3"", ""count"": 2}]"
CSV
check "check accepts a dump equal to the reference (0.6 = 0.60, approx within 1)" "$pv" check "$tmp/records.jsonl" "$tmp/good.csv"

# tamper LINE SED_EXPR EXPECTED_MESSAGE: check rejects the dump with that line changed, saying why.
tamper() {
  sed "$1{$2}" "$tmp/good.csv" >"$tmp/bad.csv"
  ! "$pv" check "$tmp/records.jsonl" "$tmp/bad.csv" >"$tmp/bad.out" && grep -qF -- "$3" "$tmp/bad.out"
}
check "a count off by one is found" tamper 2 "s/cart,5,/cart,6,/" "views is 6, the reference says 5"
check "a sum off by one cent in 16 digits is found" tamper 3 "s/12345678901234.5700/12345678901234.56/" "revenue is 12345678901234.56"
check "a double-rounded sum is found" tamper 3 "s/12345678901234.5700/12345678901234.5703/" "revenue is"
check "a revenue where no amount was is found" tamper 1 "s|/,1,,|/,1,0,|" "revenue is 0, the reference says None"
check "a distinct count off is found" tamper 2 "s/,0.6,3,3,/,0.6,2,3,/" "customers is 2"
check "a top-k tie broken the other way is found" tamper 2 "s/p1/px/; s/p4/p1/; s/px/p4/" "top_products is"
check "an approximate count beyond its bound is found" tamper 2 "s/,0.6,3,3,/,0.6,3,6,/" "approx_customers is 6"
check "the bound allows what linear counting's collisions make likely, not more" python3 - "$pv" <<'PY'
import importlib.machinery, sys
pv = importlib.machinery.SourceFileLoader("pageviews", sys.argv[1]).load_module()
m = 2 ** 14
assert 1.9 < pv.hll_tolerance(3, m) <= 2
assert 4 < pv.hll_tolerance(126, m) < 10, pv.hll_tolerance(126, m)   # 126 seen 4 off
assert abs(pv.hll_tolerance(100000, m) - 3 * 1.04 / 128 * 100000) < 1e-6  # large: the 3-sigma bound
PY
check "a missing row is found" tamper 1 "d" "in the reference, not in the table"
check "a row of another window is found" tamper 1 "s/^1796558400000,1796558460000/1796558340000,1796558400000/" "in the table, not in the reference"
check "a duplicated row is found" tamper 1 "p" "two rows"

# dump: a result table in PostgreSQL (timestamptz bounds, numeric, jsonb, as mode: merge creates
# them) read back as check expects it.
use_services
t="pv_ref_$(date +%s%N | tail -c 9)"
psql_q "create table $t (window_start timestamptz, window_end timestamptz, page text, views bigint, revenue numeric,
          customers bigint, approx_customers bigint, top_products jsonb);
        insert into $t values ('2026-12-06T12:00:00Z', '2026-12-06T12:01:00Z', '/', 1, null, 1, 1, '[{\"value\": \"p9\", \"count\": 1}]'),
          ('2026-12-06T12:00:00Z', '2026-12-06T12:01:00Z', '/cart', 5, 0.60, 3, 3, '[{\"value\": \"p1\", \"count\": 2}, {\"value\": \"p4\", \"count\": 2}, {\"value\": \"p2\", \"count\": 1}]'),
          ('2026-12-06T12:01:00Z', '2026-12-06T12:02:00Z', '/cart', 2, 12345678901234.57, 1, 1, '[{\"count\": 2, \"value\": \"p3\"}]')" >/dev/null
"$pv" dump "$t" >"$tmp/dumped.csv"
psql_q "drop table $t" >/dev/null
check "dump reads a result table back as check expects it" "$pv" check "$tmp/records.jsonl" "$tmp/dumped.csv"

# The generator: bounded disorder, many keys, deterministic per seed.
"$pv" generate 5000 "$tmp/gen.jsonl" --disorder 20 --span 300 >"$tmp/gen.tsv"
"$pv" generate 5000 "$tmp/gen2.jsonl" --disorder 20 --span 300 >/dev/null
check "the same seed gives the same records" cmp "$tmp/gen.jsonl" "$tmp/gen2.jsonl"
check "stdout holds KEY<TAB>record for every record, keyed by customer" python3 - "$tmp/gen.jsonl" "$tmp/gen.tsv" <<'PY'
import json, sys
records = open(sys.argv[1]).read().splitlines()
lines = [l.split("\t", 1) for l in open(sys.argv[2]).read().splitlines()]
assert [v for _, v in lines] == records
assert all(json.loads(v)["customer"] == k for k, v in lines)
assert len({k for k, _ in lines}) > 1000, "too few keys to spread over partitions"
PY
check "event times are out of order, by at most the disorder" python3 - "$tmp/gen.jsonl" <<'PY'
import datetime, json, sys
ts = [datetime.datetime.fromisoformat(json.loads(l)["ts"].replace("Z", "+00:00")).timestamp()
      for l in open(sys.argv[1])]
start = datetime.datetime(2026, 12, 6, 12, tzinfo=datetime.timezone.utc).timestamp()
inversions = sum(1 for a, b in zip(ts, ts[1:]) if b < a)
assert inversions > len(ts) // 4, inversions
assert all(start + i * 300 / len(ts) - 20.001 <= t <= start + i * 300 / len(ts) for i, t in enumerate(ts))
assert max(ts) - min(ts) > 250
PY
check "amounts are decimals with cents, present on priced pages only" python3 - "$tmp/gen.jsonl" <<'PY'
import json, re, sys
lines = open(sys.argv[1]).read().splitlines()
with_amount = [l for l in lines if '"amount"' in l]
assert 0.3 * len(lines) < len(with_amount) < 0.9 * len(lines)
assert all(re.search(r'"amount":\d+\.\d\d}$', l) for l in with_amount)
assert all(json.loads(l)["page"] not in ("/", "/search", "/help") for l in with_amount)
PY
finish
