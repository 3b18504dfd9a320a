#!/usr/bin/env bash
# Schema evolution mid-stream, for real: records made by the real Avro serializer (which registers
# each schema in the dev environment's registry), Avro keys, the real binary, broker and
# PostgreSQL. A postgres sink without `columns:` creates its table from the schema, its primary
# key from the key schema, and with `evolve: add_columns` follows a producer that moves to schema
# v2 (a new optional field, an int widened to long, a float to double) while an old producer goes
# on writing v1, under delivery: exactly_once, SIGKILLed twice mid-stream; two sink instances meet
# each schema, and the table is changed once. Every produced key is then in the table once with
# exactly the values produced; the new column is NULL for v1 rows; the widened columns are bigint,
# holding values beyond 2^31, and double precision; nothing is a dead letter; each change is
# logged and counted. Then the same without `evolve`: the v2 records are dead letters naming the
# missing column and the narrow one, with their topic/partition/offset, and every v1 record is in
# the table.
#
# The registry stand-in checks no compatibility; v2 is BACKWARD compatible with v1 all the same
# (Confluent's default level: a new field with a default, int promoted to long, float to double),
# so a real registry would take it too.
source "$(dirname "$0")/exactly_once_lib.sh"
use_registry

run="se_${run_id#eo_}"
topic="t_$run" table="$run" dlq="${run}_dl"
"$src/scripts/dev-env" topic "$topic" 3 >/dev/null

cat >"$tmp/key.avsc" <<'JSON'
{"type": "record", "name": "OrderKey", "namespace": "etld.evolve", "fields": [{"name": "id", "type": "long"}]}
JSON
v1_fields='{"name": "id", "type": "long"},
  {"name": "customer", "type": "string"},
  {"name": "qty", "type": "int"},
  {"name": "ratio", "type": "float"},
  {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}},
  {"name": "placed_at", "type": {"type": "long", "logicalType": "timestamp-millis"}}'
cat >"$tmp/v1.avsc" <<JSON
{"type": "record", "name": "Order", "namespace": "etld.evolve", "fields": [
  $v1_fields]}
JSON
# v2: qty widened from int to long, ratio from float to double, and a new optional field.
sed -e 's/"name": "qty", "type": "int"/"name": "qty", "type": "long"/' \
  -e 's/"name": "ratio", "type": "float"/"name": "ratio", "type": "double"/' "$tmp/v1.avsc" >"$tmp/v2.avsc"
sed -i 's/"timestamp-millis"}}/"timestamp-millis"}},\n  {"name": "note", "type": ["null", "string"], "default": null}/' "$tmp/v2.avsc"
python3 -c 'import json, sys; s = json.load(open(sys.argv[1])); assert [f["name"] for f in s["fields"]][-1] == "note"' "$tmp/v2.avsc"

# records VERSION FROM TO PER_TENTH: the records of keys FROM..TO-1 of schema VERSION as
# avro-produce's input lines, PER_TENTH every 0.1 s (0: all at once); each also written to a file
# of its own in $exp_dir. v2 records hold qty beyond 2^31 (up to 2^62), a ratio that a float
# would round, and a note on two of three.
records() {
  python3 -u - "$@" "$exp_dir/$1.$2.jsonl" <<'PY'
import json, sys, time
version, lo, hi, rate, expected = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
with open(expected, "w") as out:
    for i in range(lo, hi):
        v = {"id": i, "customer": f"cust-{i % 97:02d} \"é\"\t{i}", "qty": i % 1000 - 500, "ratio": i % 1000 + 0.5,
             "amount": f"{i * 7 % 100000}.{i % 100:02d}",
             "placed_at": f"2026-12-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{i * 7 % 60:02d}.{i % 1000:03d}Z"}
        if version == "v2":
            v["qty"] = 2**31 + i * 1_000_003 if i % 2 else 2**62 - i
            v["ratio"] = i + 0.1
            if i % 3:
                v["note"] = f"note {i}"
        out.write(json.dumps({"version": version, **v}) + "\n")
        print(json.dumps({"key": {"id": i}, "value": v}))
        if rate and (i - lo + 1) % rate == 0:
            sys.stdout.flush()
            time.sleep(0.1)
PY
}
# produce VERSION FROM TO PER_TENTH: those records through the real serializer, in the background.
produce() {
  records "$@" | "$avro_produce" --topic "$topic" --schema "$tmp/$1.avsc" --key-schema "$tmp/key.avsc" \
    2>>"$tmp/producer.log" &
  bg_pids+=($!)
}

# produce_now VERSION FROM TO: the same, all at once, waiting until the broker has them.
produce_now() {
  records "$@" 0 | "$avro_produce" --topic "$topic" --schema "$tmp/$1.avsc" --key-schema "$tmp/key.avsc" \
    2>>"$tmp/producer.log"
}

pipeline() {  # pipeline FILE TABLE DLQ TOPIC EXTRA...: the pipeline, EXTRA lines added to the sink
  local file=$1 tbl=$2 dl=$3 tp=$4; shift 4
  cat >"$file" <<YAML
pipeline: evolve
admin: { address: "127.0.0.1:0" }
stages:
  in:
    type: kafka
    brokers: \${KAFKA_BROKERS}
    topics: [$tp]
    group: g_$tbl
    format: avro
    key_format: avro
    schema_registry:
      url: \${SCHEMA_REGISTRY_URL}
    librdkafka: { group.instance.id: "g_$tbl", session.timeout.ms: "6000", heartbeat.interval.ms: "500" }
  out:
    type: postgres
    inputs: [in]
    dsn: \${PG_DSN}
    table: $tbl
    mode: upsert
    create_table: true
    max_demand: 1000
    concurrency: 2
    partition_by: _partition
    batch: { max_rows: 200, max_wait: 20ms }
    column_overrides:
      part: { from: _partition, type: integer }
      off: { from: _offset, type: bigint }
    dead_letter: { table: $dl }
YAML
  local line
  for line in "$@"; do printf '    %s\n' "$line" >>"$file"; done
}
pipeline "$tmp/p.yaml" "$table" "$dlq" "$topic" "evolve: add_columns" "delivery: exactly_once" \
  "offsets_table: offsets_$run"
check "the pipeline without columns validates" "$etld" validate "$tmp/p.yaml"
[[ $fail == 0 ]] || { finish; exit 1; }

count() { psql_q "select count(*) from $1" || echo 0; }
col_type() { psql_q "select format_type(atttypid, atttypmod) from pg_attribute where attrelid = '$table'::regclass and attname = '$1' and not attisdropped"; }
evolved() { [[ $(col_type note)/$(col_type qty)/$(col_type ratio) == "text/bigint/double precision" ]]; }
grows_past() { (($(count "$table") > $1)); }
scrape() { curl -sf "http://127.0.0.1:$1/metrics" | python3 "$promcheck" >"$tmp/samples"; }
sum_metric() { awk -v k="$1" 'index($0, k) == 1 {s += $NF} END {print s + 0}' "$tmp/samples"; }
changes_at_least() { scrape "$1" && (($(sum_metric etld_postgres_schema_changes_total{) >= $2)); }

exp_dir=$tmp/expected1 && mkdir "$exp_dir"
n1=1500 n2=3000 n3=3000  # v1 before etld starts; v2 while it runs; v1 again (an old producer)
total=$((n1 + n2 + n3))
check "the v1 records are produced before etld starts" produce_now v1 0 "$n1"

# Run 1: creates the table from v1, then evolves it when v2 arrives.
start run "$tmp/p.yaml"
port=$(admin_port "$tmp/run.1.log")
check "run 1: the v1 records start landing" wait_for 60 grows_past 0
check "run 1: the table was created from schema v1 (qty integer, ratio real, no note)" \
  test "$(col_type qty)/$(col_type ratio)/$(col_type note)" = "integer/real/"
produce v2 "$n1" $((n1 + n2)) 30
check "run 1: v2 adds the column note, widens qty to bigint and ratio to double precision" wait_for 60 evolved
check "run 1: /metrics counts the four changes (created, widened twice, added)" wait_for 10 changes_at_least "$port" 4
check "run 1: ... exactly four, over both sink instances" test "$(sum_metric etld_postgres_schema_changes_total{)" = 4
check "run 1: no schema was refused" test "$(sum_metric etld_postgres_schema_refusals_total{)" = 0
check "run 1: the log says the column was added" grep -q "table $table: added column note text" "$tmp/run.1.log"
check "run 1: ... and widened" grep -q "table $table: widened column qty from integer to bigint" "$tmp/run.1.log"
check "run 1: ... both" grep -q "table $table: widened column ratio from real to double precision" "$tmp/run.1.log"
sleep "$(python3 -c "import random; print(random.random())")"
before=$(count "$table")
kill9 run
echo "SIGKILL 1: $before of $total rows" >&2
check "SIGKILL 1 came mid-stream" test "$before" -gt 0 -a "$before" -lt "$total"

# Run 2: the old producer writes v1 again while v2 still flows; killed once it made progress.
start run "$tmp/p.yaml"
sleep 1
produce v1 $((n1 + n2)) "$total" 30
wait_for 60 grows_past $(($(count "$table") + 300)) || true
sleep "$(python3 -c "import random; print(random.random() * 0.5)")"
before=$(count "$table")
kill9 run
echo "SIGKILL 2: $before of $total rows" >&2
check "SIGKILL 2 came mid-stream" test "$before" -gt 0 -a "$before" -lt "$total"

# Run 3 to the end.
start run "$tmp/p.yaml"
all_in() { [[ $(count "$table") == "$total" ]]; }
check "every key reached the table" wait_for 90 all_in
for p in "${bg_pids[@]}"; do wait "$p" 2>/dev/null || true; done
bg_pids=()

psql_q "select json_build_object('id', id, 'customer', customer, 'qty', qty, 'ratio', ratio::float8, 'amount', amount::text,
  'placed_at', to_char(placed_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), 'note', note,
  'part', part, 'off', off) from $table" >"$tmp/table.jsonl"
# exact TABLE_ROWS EXPECTED [GAP]: each key once with the values produced, each partition's
# offsets 0..n-1 once (no record lost, none written twice) but for the offsets in GAP (FROM-TO).
exact() {
  python3 - "$1" "$2" "${3:-0-0}" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
want = {r["id"]: r for r in map(json.loads, open(sys.argv[2]))}
got = {r["id"]: r for r in rows}
bad = []
if len(rows) != len(got):
    bad.append(f"{len(rows) - len(got)} duplicate keys")
if set(got) != set(want):
    bad.append(f"missing keys {sorted(set(want) - set(got))[:10]}, unexpected {sorted(set(got) - set(want))[:10]}")
for k in sorted(set(got) & set(want)):
    g, w = got[k], want[k]
    for f in ("customer", "qty", "ratio", "amount", "placed_at"):
        if g[f] != w[f]:
            bad.append(f"key {k} ({w['version']}): {f} is {g[f]!r}, produced {w[f]!r}")
    if g["note"] != w.get("note"):
        bad.append(f"key {k} ({w['version']}): note is {g['note']!r}, produced {w.get('note')!r}")
gap_from, gap_to = map(int, sys.argv[3].split("-"))
gap = range(gap_from, gap_to)
offsets = {}
for r in rows:
    offsets.setdefault(r["part"], []).append(r["off"])
for p, offs in offsets.items():
    want_offs = [o for o in range(len(offs) + len(gap)) if o not in gap] if gap else list(range(len(offs)))
    if sorted(offs) != want_offs:
        bad.append(f"partition {p}: offsets are not {want_offs[0]}..{want_offs[-1]} once each")
for b in bad[:20]:
    print(b, file=sys.stderr)
sys.exit(1 if bad else 0)
PY
}
check "every key once with exactly the values produced (v1 and v2), every offset once" \
  exact "$tmp/table.jsonl" <(cat "$exp_dir"/*.jsonl)
check "the note is NULL on every v1 row" \
  test "$(psql_q "select count(*) from $table where note is not null and qty between -500 and 499")" = 0
check "qty holds values beyond 2^31 exactly" \
  test "$(psql_q "select count(*) || '/' || max(qty) from $table where qty > 2147483647")" = "$((n2))/$((2**62 - n1))"
check "qty holds 2^31 + 1000003 * $((n1 + 1)) exactly" \
  test "$(psql_q "select qty from $table where id = $((n1 + 1))")" = $((2**31 + (n1 + 1) * 1000003))
check "the primary key is the Avro key's field id" \
  test "$(psql_q "select string_agg(a.attname, ',') from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey) where i.indrelid = '$table'::regclass and i.indisprimary")" = id
check "no dead letter" test "$(count "$dlq")" = 0
check "the offsets table covers every record" \
  test "$(psql_q "select sum(next_offset) from offsets_$run where consumer_group = 'g_$table'")" = "$total"
check "the restarted runs found nothing more to change" \
  bash -c "! grep -E 'table $table: (created|added|widened)' $tmp/run.2.log $tmp/run.3.log"
check "run 3 exits 0 on SIGTERM" stop run

# --- Without evolve: the v2 records are dead letters naming the missing column.
topic="t2_$run" table="${run}_ne" dlq="${run}_ne_dl"
"$src/scripts/dev-env" topic "$topic" 1 >/dev/null
exp_dir=$tmp/expected2 && mkdir "$exp_dir"
check "without evolve: v1, v2, v1 records are produced" produce_now v1 0 200
produce_now v2 200 300 && produce_now v1 300 400
pipeline "$tmp/ne.yaml" "$table" "$dlq" "$topic" "delivery: exactly_once" "offsets_table: offsets_$run"
start ne "$tmp/ne.yaml"
port=$(admin_port "$tmp/ne.1.log")
landed() { [[ $(count "$table")/$(count "$dlq") == 300/100 ]]; }
check "without evolve: 300 v1 rows and 100 dead letters" wait_for 60 landed
psql_q "select json_build_object('id', id, 'customer', customer, 'qty', qty, 'ratio', ratio::float8, 'amount', amount::text,
  'placed_at', to_char(placed_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'), 'note', null,
  'part', part, 'off', off) from $table" >"$tmp/table.jsonl"
check "without evolve: every v1 record once with its values" exact "$tmp/table.jsonl" <(cat "$exp_dir"/v1.*.jsonl) 200-300
check "without evolve: the table kept its columns" test "$(col_type qty)/$(col_type ratio)/$(col_type note)" = "integer/real/"
check "without evolve: the dead letters are exactly the v2 records, by topic/partition/offset" \
  test "$(psql_q "select count(distinct \"offset\") || '/' || min(\"offset\") || '/' || max(\"offset\") || '/' || bool_and(topic = '$topic' and \"partition\" = 0) from $dlq")" = "100/200/299/true"
# The reason names every problem: the column note is missing, qty is too narrow.
check "without evolve: each reason names the missing column note" \
  test "$(psql_q "select count(*) from $dlq where error like '%it has no column note (the schema''s field note, text); add it, or set evolve: add_columns%'")" = 100
check "without evolve: ... and the column qty too narrow" \
  test "$(psql_q "select count(*) from $dlq where error like 'table $table: %column qty (integer) cannot hold the field qty (long)%'")" = 100
check "without evolve: the offsets table covers the rows and the dead letters" \
  test "$(psql_q "select sum(next_offset) from offsets_$run where consumer_group = 'g_$table'")" = 400
check "without evolve: /metrics counts the refusal" bash -c "curl -sf http://127.0.0.1:$port/metrics | python3 $promcheck | awk 'index(\$0, \"etld_postgres_schema_refusals_total{\") == 1 {s += \$NF} END {exit !(s >= 1)}'"
echo "a reason: $(psql_q "select error from $dlq limit 1")" >&2
check "without evolve: exits 0 on SIGTERM" stop ne
finish
