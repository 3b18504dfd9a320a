#!/usr/bin/env bash
# The main job through the real binary against the real broker and PostgreSQL: N JSON records
# (plus poison) on a 4-partition topic; etld is stopped with SIGTERM mid-stream and restarted;
# afterwards every good record is in the table (at least once, and here exactly once since
# upserts are keyed), every poison record is in the dead-letter table with its coordinates.
source "$(dirname "$0")/lib.sh"
use_services

n=30000
run_id="e2e_$(date +%s%N | tail -c 9)"
topic="t_$run_id" table="orders_$run_id" dlq="dead_$run_id"
"$src/scripts/dev-env" topic "$topic" 4 >/dev/null
python3 - "$n" <<'PY' | "$src/scripts/dev-env" produce --keyed "$topic"
import json, sys
n = int(sys.argv[1])
for i in range(1, n + 1):
    print(f"{i}\t" + json.dumps({"id": i, "amount": i / 100, "note": f"order {i}"}))
    if i == n // 3:
        print("bad1\t{broken json")
        print("bad2\t" + json.dumps({"amount": 1}))          # no id (required)
        print("bad3\t" + json.dumps({"id": "x", "amount": 2}))  # id not a bigint
PY

cat >"$tmp/p.yaml" <<YAML
pipeline: e2e
stages:
  in:
    type: kafka
    brokers: \${KAFKA_BROKERS}
    topics: [$topic]
    group: g_$run_id
    start_from: earliest
  parse:
    type: map
    inputs: [in]
    set: { cents: "round(amount * 100)" }
  out:
    type: postgres
    inputs: [parse]
    dsn: \${PG_DSN}
    table: $table
    create_table: true
    mode: upsert
    key: [id]
    max_demand: 2000
    batch: { max_rows: 1000, max_wait: 50ms }
    columns:
      id: { from: id, type: bigint, required: true }
      cents: { from: cents, type: bigint }
      amount: { from: amount, type: numeric }
      note: { from: note, type: text }
      part: { from: _partition, type: integer }
      off: { from: _offset, type: bigint }
    dead_letter: { table: $dlq }
YAML
check "the pipeline validates" "$etld" validate "$tmp/p.yaml"

# The first run writes small transactions, so that SIGTERM lands mid-stream however fast etld is.
sed -e 's/max_demand: 2000/max_demand: 200/' -e 's/max_rows: 1000/max_rows: 100/' "$tmp/p.yaml" >"$tmp/p-slow.yaml"
"$etld" run "$tmp/p-slow.yaml" 2>"$tmp/run1.log" &
bg_pids+=($!)
for _ in $(seq 1 300); do
  r=$(rows); [[ ${r:-0} -gt 0 ]] && break; sleep 0.1
done
kill -TERM "${bg_pids[0]}"
set +e; wait "${bg_pids[0]}"; rc1=$?; set -e
check "SIGTERM mid-stream drains and exits 0" test "$rc1" = 0
first=$(rows)
echo "rows after the first run: $first of $n" >&2
check "the first run stopped mid-stream" test "${first:-0}" -lt "$n"

"$etld" run "$tmp/p.yaml" 2>"$tmp/run2.log" &
bg_pids+=($!)
for _ in $(seq 1 600); do
  r=$(rows); d=$(psql_q "select count(*) from $dlq" 2>/dev/null || echo 0)
  [[ ${r:-0} -ge $n && ${d:-0} -ge 3 ]] && break; sleep 0.1
done
kill -TERM "${bg_pids[1]}"
set +e; wait "${bg_pids[1]}"; rc2=$?; set -e
check "second run exits 0" test "$rc2" = 0
check "every record landed once" test "$(psql_q "select count(*) || '/' || count(distinct id) || '/' || min(id) || '/' || max(id) from $table")" = "$n/$n/1/$n"
check "typed values are right" test "$(psql_q "select amount::text || ' ' || note || ' ' || cents from $table where id = 1234")" = "12.34 order 1234 1234"
check "metadata columns are filled" test "$(psql_q "select count(*) from $table where part between 0 and 3 and off >= 0")" = "$n"
check "three dead letters" test "$(psql_q "select count(*) from $dlq")" = 3
check "dead letters keep coordinates and reasons" test "$(psql_q "select count(*) from $dlq where topic = '$topic' and partition >= 0 and \"offset\" >= 0 and error <> ''")" = 3
check "a record the map could not parse is dead-lettered by the sink, naming the stage" test "$(psql_q "select count(*) from $dlq where convert_from(key, 'UTF8') = 'bad1' and error like 'stage ''parse'': map: invalid JSON%'")" = 1
check "the bad JSON's raw bytes are kept" test "$(psql_q "select convert_from(value, 'UTF8') from $dlq where convert_from(key, 'UTF8') = 'bad1'")" = "{broken json"
# validate --against-db through the binary: the table exists now; a mapped column does not.
check "validate --against-db accepts the live table" "$etld" validate --against-db "$tmp/p.yaml"
sed -e 's/create_table: true/create_table: false/' -e 's/      note: { from: note, type: text }/      notes: { from: note, type: text }/' \
  "$tmp/p.yaml" >"$tmp/bad-db.yaml"
set +e; "$etld" validate --against-db "$tmp/bad-db.yaml" 2>"$tmp/bad-db.err"; rc3=$?; set -e
check "validate --against-db rejects a column the table lacks" test "$rc3" = 1
check "... naming it with file:line:column" grep -q "bad-db.yaml:[0-9]*:[0-9]*: error: .*notes" "$tmp/bad-db.err"
if [ "$fail" != 0 ]; then cat "$tmp/bad-db.err"; echo "--- run 1"; tail -20 "$tmp/run1.log"; echo "--- run 2"; tail -20 "$tmp/run2.log"; fi >&2
finish
