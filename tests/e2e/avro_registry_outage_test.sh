#!/usr/bin/env bash
# The schema registry down is transient, not bad input: records whose schema id etld has not
# cached yet arrive while the registry is stopped. Nothing is dead-lettered, etld logs that it
# retries and holds the partition (the records after them, of a cached id, wait too), and once the
# registry is back every record lands exactly once and in offset order.
# Stops and restarts the dev environment's registry: tests/CMakeLists.txt runs it alone.
source "$(dirname "$0")/avro_lib.sh"
cleanup_registry() {  # whatever happens, leave the registry running for the other tests
  "$src/scripts/dev-env" registry-start >/dev/null 2>&1 || true
}
trap 'cleanup_registry; cleanup' EXIT

avro_run avout
cat >"$tmp/v1.avsc" <<'JSON'
{"type": "record", "name": "Reading", "namespace": "etld.test",
 "fields": [{"name": "id", "type": "long"}, {"name": "name", "type": "string"}]}
JSON
# v2 adds an optional field: a new schema, so a new id.
cat >"$tmp/v2.avsc" <<'JSON'
{"type": "record", "name": "Reading", "namespace": "etld.test",
 "fields": [{"name": "id", "type": "long"}, {"name": "name", "type": "string"},
            {"name": "unit", "type": ["null", "string"], "default": null}]}
JSON
lines() {  # lines FROM TO [UNIT]
  seq "$1" "$2" | awk -v u="${3:-}" '{printf "{\"id\": %d, \"name\": \"r%d\"%s}\n", $1, $1, u == "" ? "" : ", \"unit\": \"" u "\""}'
}
# A: ids 1..20 with v1, produced now. B (21..40, v2) and C (41..60, v1) are serialized now,
# which registers v2, and produced later while the registry is down.
check "A is produced by the real serializer" \
  "$avro_produce" --topic "$topic" --schema "$tmp/v1.avsc" --key-field id < <(lines 1 20)
lines 21 40 kWh | "$avro_produce" --topic "$topic" --schema "$tmp/v2.avsc" --key-field id --print-raw >"$tmp/b.jsonl"
lines 41 60 | "$avro_produce" --topic "$topic" --schema "$tmp/v1.avsc" --key-field id --print-raw >"$tmp/c.jsonl"
check "B and C are serialized" test "$(cat "$tmp/b.jsonl" "$tmp/c.jsonl" | wc -l)" = 40
check "v2 has a schema id of its own" \
  test "$(curl -sf "$SCHEMA_REGISTRY_URL/subjects/$topic-value/versions" | tr -d ' ')" = "[1,2]"

# arrival: the order rows reached the table, to compare with their offsets.
psql_q "create table $table (arrival bigint generated always as identity, id bigint, name text,
  unit text, off bigint)" >/dev/null
cat >"$tmp/p.yaml" <<YAML
pipeline: avro_registry_outage
stages:
$(avro_source "  timeout: 2s")
  out:
    type: postgres
    inputs: [in]
    dsn: \${PG_DSN}
    table: $table
    batch: { max_rows: 5, max_wait: 20ms }
    columns:
      id: { from: id, type: bigint, required: true }
      name: { from: name, type: text }
      unit: { from: unit, type: text }
      off: { from: _offset, type: bigint }
    dead_letter: { table: $dlq }
YAML
start_etld
wait_for 60 rows_are 20 || true
check "A landed while the registry was up" test "$(rows)" = 20

"$src/scripts/dev-env" registry-stop
check "the registry is down" bash -c "! curl -s -m 2 -o /dev/null '$SCHEMA_REGISTRY_URL/subjects'"
check "B and C are produced while it is down" \
  "$avro_produce" --topic "$topic" --schema "$tmp/v1.avsc" < <(cat "$tmp/b.jsonl" "$tmp/c.jsonl")
dead() { psql_q "select count(*) from $dlq" 2>/dev/null || echo 0; }
retry_logged() { grep -qE 'warn(ing)? .*schema registry: .*retrying in [0-9]+ ?ms' "$tmp/run.log"; }
wait_for 30 retry_logged || true
check "etld logs that it retries the registry" retry_logged
sleep 3  # several retries' worth of time: nothing may move meanwhile
check "nothing is dead-lettered while the registry is down" test "$(dead)" = 0
check "nothing of B nor C landed (C waits behind B in its partition)" test "$(rows)" = 20
check "etld runs on" kill -0 "$pid"
check "the warning names the registry's URL" grep -qF "$SCHEMA_REGISTRY_URL" <(grep 'retrying in' "$tmp/run.log")
if ! retry_logged || [ "$(dead)" != 0 ]; then tail -20 "$tmp/run.log" >&2; fi

check "the registry starts again" "$src/scripts/dev-env" registry-start
wait_for 60 rows_are 60 || true
check "every record landed once the registry is back" test "$(rows)" = 60
check "... each exactly once" test "$(psql_q "select count(distinct id) || ' ' || min(id) || ' ' || max(id) from $table")" = "60 1 60"
check "... in offset order" test "$(psql_q "select count(*) from (select off, row_number() over (order by arrival) - 1 as n from $table) x where off = n")" = 60
check "... with their values (v2's field in B only)" \
  test "$(psql_q "select count(*) filter (where unit = 'kWh') || ' ' || count(*) filter (where unit is null) from $table where name = 'r' || id")" = "20 40"
check "still nothing dead-lettered" test "$(dead)" = 0
stop_etld
finish
