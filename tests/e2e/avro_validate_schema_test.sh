#!/usr/bin/env bash
# `etld validate --against-db` compares a postgres sink's table with the Avro schema the registry
# holds for its kafka source's topic (subject <topic>-value, registered here by the real
# serializer): a column that cannot hold the field it reads fails validation at the column's line,
# naming the column, the field, the Avro type and the PostgreSQL type; once the table is fixed it
# passes. Also: a field the schema lacks, mode debezium (the envelope's `after` record), and a
# registry that cannot be asked (an error, the database checks still run, no credential shown).
source "$(dirname "$0")/avro_lib.sh"
avro_run avc

cat >"$tmp/value.avsc" <<'JSON'
{"type": "record", "name": "Order", "namespace": "etld.test", "fields": [
  {"name": "id", "type": "long"},
  {"name": "qty", "type": "long"},
  {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 20, "scale": 4}},
  {"name": "placed_at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
  {"name": "note", "type": ["null", "string"], "default": null},
  {"name": "payload", "type": "bytes"}
]}
JSON
echo '{"id": 1, "qty": 5000000000, "amount": "1234567890123456.1234", "placed_at": "2026-12-06T12:00:00.123456Z", "note": null, "payload": "\u0000\u00ff"}' \
  >"$tmp/records.jsonl"
check "the real serializer produces a record and registers the schema" \
  "$avro_produce" --topic "$topic" --schema "$tmp/value.avsc" <"$tmp/records.jsonl"

# qty is integer: the schema's long does not fit.
psql_q "create table $table (id bigint primary key, qty integer, amount numeric(24,4),
  placed_at timestamptz, note text, payload bytea)" >/dev/null
write_pipeline() {  # write_pipeline FILE [EXTRA COLUMN LINE]
  cat >"$1" <<YAML
pipeline: avro_validate
stages:
$(avro_source "  timeout: 5s")
  out:
    type: postgres
    inputs: [in]
    dsn: \${PG_DSN}
    table: $table
    columns:
      id: { from: id, type: bigint }
      qty: { from: qty, type: bigint }
      amount: { from: amount, type: numeric }
      placed_at: { from: placed_at, type: timestamptz }
      note: { from: note, type: text }
      payload: { from: payload, type: bytea }
${2:-}
YAML
}
write_pipeline "$tmp/p.yaml"
qty_line=$(grep -n '^      qty:' "$tmp/p.yaml" | cut -d: -f1)

check "the pipeline is valid without the database" "$etld" validate "$tmp/p.yaml"
rc=0; "$etld" validate --against-db "$tmp/p.yaml" 2>"$tmp/bad.err" || rc=$?
check "validate --against-db fails on the integer column" test "$rc" = 1
check "... at the column's line, naming the column, the field, the Avro type and the PostgreSQL type" \
  grep -q "p.yaml:$qty_line:[0-9]*: error: column 'qty' of table $table is integer, which cannot hold field 'qty' of topic '$topic', Avro long (subject $topic-value version 1): its values may exceed the range of integer" "$tmp/bad.err"
check "... and says nothing of the columns that fit" test "$(grep -c 'cannot hold field' "$tmp/bad.err")" = 1

psql_q "alter table $table alter column qty type bigint" >/dev/null
out=0; "$etld" validate --against-db "$tmp/p.yaml" 2>"$tmp/good.err" || out=$?
check "once the column is bigint, validate --against-db passes" test "$out" = 0
check "... and says ok" grep -q 'p.yaml: ok' "$tmp/good.err"

# The mapping's type converts the values before PostgreSQL sees them: a long mapped as integer.
sed -e 's|qty: { from: qty, type: bigint }|qty: { from: qty, type: integer }|' "$tmp/p.yaml" >"$tmp/mapped.yaml"
rc=0; "$etld" validate --against-db "$tmp/mapped.yaml" 2>"$tmp/mapped.err" || rc=$?
check "a long mapped as integer fails validation, though the column is bigint" test "$rc" = 1
check "... at the mapping's type" \
  grep -q "mapped.yaml:$qty_line:[0-9]*: error: column 'qty' is mapped as integer, which cannot hold field 'qty' of topic '$topic', Avro long (subject $topic-value version 1): its values may exceed the range of integer (map it with the column's type, bigint)" "$tmp/mapped.err"

# A table etld creates (create_table, the table absent): the mapped types are checked all the same.
sed -e "s|table: $table|table: ${table}_new\n    create_table: true|" "$tmp/mapped.yaml" >"$tmp/create.yaml"
rc=0; "$etld" validate --against-db "$tmp/create.yaml" 2>"$tmp/create.err" || rc=$?
check "create_table: a long mapped as integer fails validation before the table exists" test "$rc" = 1
create_qty_line=$(grep -n '^      qty:' "$tmp/create.yaml" | cut -d: -f1)
check "... at the mapping's type" grep -q "create.yaml:$create_qty_line:[0-9]*: error: column 'qty' is mapped as integer, which cannot hold field 'qty'.*(map it with a type that holds the field)" "$tmp/create.err"

# What is not checked is said as a warning, and validation passes: a topic without a schema in
# the registry, a topic_pattern source, columns a map changes.
sed -e "s|topics: \[$topic\]|topics: [${topic}_none]|" "$tmp/mapped.yaml" >"$tmp/none.yaml"
rc=0; "$etld" validate --against-db "$tmp/none.yaml" 2>"$tmp/none.err" || rc=$?
check "a topic without a schema in the registry is not checked, and validation passes" test "$rc" = 0
check "... with a warning naming the subject" \
  grep -q "none.yaml:[0-9:]*: warning: subject '${topic}_none-value' has no schema in the registry at $SCHEMA_REGISTRY_URL: the columns of stage 'out' are not checked against topic '${topic}_none'" "$tmp/none.err"
sed -e "s|topics: \[$topic\]|topic_pattern: \"^$topic\$\"|" "$tmp/mapped.yaml" >"$tmp/pattern.yaml"
rc=0; "$etld" validate --against-db "$tmp/pattern.yaml" 2>"$tmp/pattern.err" || rc=$?
check "a topic_pattern source is not checked, and validation passes" test "$rc" = 0
check "... with a warning saying only explicit topics are" grep -q "warning: source 'in' reads topic_pattern" "$tmp/pattern.err"
sed -e "s|inputs: \[in\]|inputs: [m]|" "$tmp/mapped.yaml" >"$tmp/map.yaml"
cat >>"$tmp/map.yaml" <<YAML
  m:
    type: map
    inputs: [in]
    set: { qty: "1" }
YAML
rc=0; "$etld" validate --against-db "$tmp/map.yaml" 2>"$tmp/map.err" || rc=$?
check "a column a map sets is not checked against the schema" test "$rc" = 0
check "... with a warning naming the column and the map" \
  grep -q "warning: stage 'out': column(s) qty are not checked against the Avro schema: map 'm' sets, renames or removes what they read" "$tmp/map.err"

# A column reading a field the schema does not have.
psql_q "alter table $table add column colour text" >/dev/null
write_pipeline "$tmp/missing.yaml" "      colour: { from: color, type: text }
      notes: { from: notes, type: text }"
psql_q "alter table $table add column notes text" >/dev/null
rc=0; "$etld" validate --against-db "$tmp/missing.yaml" 2>"$tmp/missing.err" || rc=$?
check "a field the schema lacks fails validation" test "$rc" = 1
check "... naming the field and the record's fields" \
  grep -q "error: column 'colour' reads field 'color', which the Avro schema of topic '$topic' (subject $topic-value version 1) does not have: record etld.test.Order has no field 'color' (its fields: id, qty, amount, placed_at, note, payload)" "$tmp/missing.err"

check "... and a near miss with a did-you-mean" \
  grep -q "error: column 'notes' reads field 'notes', which .* does not have: record etld.test.Order has no field 'notes' (its fields: .*) (did you mean 'note'?)" "$tmp/missing.err"

# The registry cannot be asked: an error at schema_registry, the database checks still run (the
# table lacks a column), and the registry's password is nowhere in the output.
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
sed -e "s|url: \${SCHEMA_REGISTRY_URL}|url: http://127.0.0.1:$port|" \
    -e "s|  timeout: 5s|  timeout: 2s\n      username: etld\n      password: registry-pw-s3cret|" "$tmp/missing.yaml" \
  | sed -e "s|colour: { from: color|nocolumn: { from: id|" -e "s|topics: \[$topic\]|topics: [$topic, ${topic}_b]|" >"$tmp/down.yaml"
rc=0; "$etld" validate --against-db "$tmp/down.yaml" 2>"$tmp/down.err" || rc=$?
check "an unreachable registry fails validation, as an unreachable database does" test "$rc" = 1
check "... saying once that the columns cannot be checked against the topics" \
  grep -q "error: the columns of stage 'out' cannot be checked against topics '$topic', '${topic}_b': cannot fetch the latest schema of subject '$topic-value' from the registry at http://127.0.0.1:$port" "$tmp/down.err"
check "... one error for the registry, one for the table" test "$(grep -c 'error:' "$tmp/down.err")" = 2
check "... while the database checks still ran" grep -q "has no column 'nocolumn'" "$tmp/down.err"
check "... and the registry's password is not shown" bash -c "! grep -q 'registry-pw-s3cret' '$tmp/down.err'"

# mode debezium: the columns are checked against the envelope's `after` record.
dtopic="${topic}_dbz" dtable="${table}_dbz"
"$src/scripts/dev-env" topic "$dtopic" 1 >/dev/null
customers_envelope_avsc >"$tmp/envelope.avsc"
echo '{"before": null, "after": {"id": 1, "email": "a@example.com", "balance": "10.50"}, "source": {"lsn": 100}, "op": "c"}' \
  >"$tmp/changes.jsonl"
check "the real serializer registers the Debezium envelope" \
  "$avro_produce" --topic "$dtopic" --schema "$tmp/envelope.avsc" <"$tmp/changes.jsonl"
psql_q "create table $dtable (id integer primary key, email text, balance numeric(10,2), lsn bigint)" >/dev/null
sed -e "s|topics: \[$topic\]|topics: [$dtopic]|" "$tmp/p.yaml" | sed -n '1,/^    columns:/p' \
  | sed -e "s|table: $table|table: $dtable\n    mode: debezium\n    key: [id]|" >"$tmp/dbz.yaml"
cat >>"$tmp/dbz.yaml" <<YAML
      id: { from: id, type: integer }
      email: { from: email, type: text }
      balance: { from: balance, type: numeric }
      lsn: { from: _source.lsn, type: bigint }
YAML
balance_line=$(grep -n '^      balance:' "$tmp/dbz.yaml" | cut -d: -f1)
rc=0; "$etld" validate --against-db "$tmp/dbz.yaml" 2>"$tmp/dbz.err" || rc=$?
check "mode debezium: a column too narrow for the after record's field fails validation" test "$rc" = 1
check "... at its line, with the after record's field and type" \
  grep -q "dbz.yaml:$balance_line:[0-9]*: error: column 'balance' of table $dtable is numeric(10,2), which cannot hold field 'balance' of topic '$dtopic', Avro decimal(12,2) (subject $dtopic-value version 1): it has up to 10 digits before the decimal point, numeric(10,2) holds 8" "$tmp/dbz.err"
check "... and only that column" test "$(grep -c 'error:' "$tmp/dbz.err")" = 1
psql_q "alter table $dtable alter column balance type numeric(12,2)" >/dev/null
check "once it is numeric(12,2), the Debezium pipeline validates against the database" \
  "$etld" validate --against-db "$tmp/dbz.yaml"

if [ "$fail" != 0 ]; then
  for f in bad good mapped create none pattern map missing down dbz; do echo "--- $f.err"; cat "$tmp/$f.err" 2>/dev/null; done
  echo "--- dbz.yaml"; cat "$tmp/dbz.yaml"
fi >&2
finish
