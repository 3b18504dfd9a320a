#!/usr/bin/env bash
# `etld validate --against-db` for a postgres sink WITHOUT `columns:` (columns from the records'
# Avro schema): the table against the latest schema the registry holds for the topic (registered
# by the real serializer, two versions), decided as the writer decides at run time. Each problem is
# an error located at the sink's `table:` (or its `tables:` entry) naming the topic and the
# subject's version, all listed at once: a missing column without evolve, a type the column cannot
# hold, a NOT NULL column no field fills, a nullable field for a NOT NULL column, a key column the
# schema lacks, a template's table that does not exist. What evolve: add_columns would change is a
# warning, and validation passes. The key comes from the topic's Avro key schema when `key:` is
# not given.
source "$(dirname "$0")/avro_lib.sh"
avro_run avsc

cat >"$tmp/v1.avsc" <<'JSON'
{"type": "record", "name": "Order", "namespace": "etld.test", "fields": [
  {"name": "id", "type": "long"},
  {"name": "qty", "type": "long"},
  {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}}
]}
JSON
# v2: a new optional field.
python3 - "$tmp/v1.avsc" >"$tmp/v2.avsc" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
s["fields"].append({"name": "note", "type": ["null", "string"], "default": None})
print(json.dumps(s))
PY
echo '{"type": "record", "name": "OrderKey", "namespace": "etld.test", "fields": [{"name": "id", "type": "long"}]}' \
  >"$tmp/key.avsc"
echo '{"key": {"id": 1}, "value": {"id": 1, "qty": 2, "price": "1.50"}}' >"$tmp/r1.jsonl"
echo '{"key": {"id": 2}, "value": {"id": 2, "qty": 3, "price": "2.50", "note": "n"}}' >"$tmp/r2.jsonl"
check "the real serializer registers the value schema v1 and the key schema" \
  "$avro_produce" --topic "$topic" --schema "$tmp/v1.avsc" --key-schema "$tmp/key.avsc" <"$tmp/r1.jsonl"
check "... and the value schema v2" \
  "$avro_produce" --topic "$topic" --schema "$tmp/v2.avsc" --key-schema "$tmp/key.avsc" <"$tmp/r2.jsonl"
about="topic '$topic' (subject $topic-value version 2)"

# write_pipeline FILE SINK_LINE...: the avro source (Avro keys too) and the sink `out` without
# columns, mode upsert (its key: the Avro key's fields unless a line sets key:).
write_pipeline() {
  local file=$1; shift
  {
    echo "pipeline: avro_validate_schema_columns"
    echo "stages:"
    avro_source "  timeout: 5s" "key_format: avro"
    cat <<YAML
  out:
    type: postgres
    inputs: [in]
    dsn: \${PG_DSN}
    mode: upsert
YAML
    local line
    for line in "$@"; do printf '    %s\n' "$line"; done
  } >"$file"
}
# validate NAME: runs validate --against-db on $tmp/NAME.yaml, its stderr in $tmp/NAME.err, its
# exit status in $rc.
validate() { rc=0; "$etld" validate --against-db "$tmp/$1.yaml" 2>"$tmp/$1.err" || rc=$?; }
line_of() { grep -n "$2" "$tmp/$1.yaml" | head -1 | cut -d: -f1; }

# A table without the new field's column and with a column too narrow for a field.
narrow="${table}_narrow"
psql_q "create table $narrow (id bigint primary key, qty integer, price numeric(10,2))" >/dev/null
write_pipeline "$tmp/narrow.yaml" "table: $narrow"
at=$(line_of narrow "table: $narrow")
validate narrow
check "without evolve, a missing column and a too narrow one fail validation" test "$rc" = 1
check "... the missing column, at the sink's table:, with the topic and the subject's version" \
  grep -qF "narrow.yaml:$at:12: error: table $narrow cannot take the records of $about: it has no column note (the schema's field note, text); add it, or set evolve: add_columns" "$tmp/narrow.err"
check "... and the column that cannot hold its field, saying what evolve would widen it to" \
  grep -qF "narrow.yaml:$at:12: error: table $narrow cannot take the records of $about: column qty (integer) cannot hold the field qty (long): its values may exceed the range of integer; evolve: add_columns would widen it to bigint" "$tmp/narrow.err"
check "... both, and nothing else (the key comes from the Avro key schema)" test "$(grep -c 'error:' "$tmp/narrow.err")" = 2

write_pipeline "$tmp/evolve.yaml" "table: $narrow" "evolve: add_columns"
validate evolve
check "with evolve: add_columns the same table passes validation" test "$rc" = 0
check "... with a warning for the column it would add" \
  grep -qF "evolve.yaml:$at:12: warning: table $narrow: evolve: add_columns would add column note text for the records of $about" "$tmp/evolve.err"
check "... and one for the column it would widen" \
  grep -qF "warning: table $narrow: evolve: add_columns would widen column qty from integer to bigint for the records of $about" "$tmp/evolve.err"
check "... and says ok" grep -q 'evolve.yaml: ok' "$tmp/evolve.err"
check "validate changed nothing in the table" \
  test "$(psql_q "select string_agg(column_name || ' ' || data_type, ', ' order by ordinal_position) from information_schema.columns where table_name = '$narrow'")" = "id bigint, qty integer, price numeric"

# Changes evolve cannot make: a type without a safe widening, a NOT NULL column no field fills, a
# key column the schema lacks.
bad="${table}_bad"
psql_q "create table $bad (id bigint primary key, qty boolean, price numeric(10,2), note text, extra text not null)" >/dev/null
write_pipeline "$tmp/bad.yaml" "table: $bad" "evolve: add_columns"
validate bad
check "a column evolve cannot widen and a NOT NULL column no field fills fail validation, evolve or not" test "$rc" = 1
check "... the column's type" \
  grep -qF "error: table $bad cannot take the records of $about: column qty (boolean) cannot hold the field qty (long): boolean cannot hold it; no safe widening: change the column, or map the field with column_overrides" "$tmp/bad.err"
check "... the NOT NULL column" \
  grep -qF "error: table $bad cannot take the records of $about: column extra is NOT NULL without a default, and the schema has no field extra (removed?): every row would fail; give the column a default or drop NOT NULL" "$tmp/bad.err"
check "... both" test "$(grep -c 'error:' "$tmp/bad.err")" = 2
write_pipeline "$tmp/key.yaml" "table: $narrow" "evolve: add_columns" "key: [order_id]"
validate key
check "a key column the schema lacks fails validation" test "$rc" = 1
check "... naming the key column and the schema" \
  grep -qF "error: table $narrow cannot take the records of $about: key column 'order_id' is not a field of the records (schema etld.test.Order)" "$tmp/key.err"

# A column_overrides entry reading another field is checked as a mapped column, at its line.
write_pipeline "$tmp/override.yaml" "table: $narrow" "evolve: add_columns" "column_overrides:" \
  "  total: {from: qtty, type: bigint}"
override_at=$(line_of override "total: {from: qtty")
validate override
check "an override reading a field the schema lacks fails validation" test "$rc" = 1
check "... at the override's line, with a did-you-mean" \
  grep -qF "override.yaml:$override_at:7: error: column 'total' reads field 'qtty', which the Avro schema of $about does not have: record etld.test.Order has no field 'qtty' (its fields: id, qty, price, note) (did you mean 'qty'?)" "$tmp/override.err"
check "... and evolve would add its column" \
  grep -qF "warning: table $narrow: evolve: add_columns would add column total bigint for the records of $about" "$tmp/override.err"

# A map between drops the records' schema (the sink learns the columns from the records): not
# checked, said as a warning.
sed -e "s|inputs: \[in\]|inputs: [m]|" "$tmp/narrow.yaml" >"$tmp/map.yaml"
cat >>"$tmp/map.yaml" <<YAML
  m:
    type: map
    inputs: [in]
    set: { qty: "1" }
YAML
validate map
check "with a map between, the table is not checked against the schema" test "$rc" = 0
check "... and a warning says why" \
  grep -qF "warning: stage 'out': its columns come from the records' schema, which map 'm' drops: the table is not checked against the Avro schemas" "$tmp/map.err"

# A `tables:` entry: located at its table; a nullable field for a NOT NULL column.
entry="${table}_entry"
psql_q "create table $entry (id bigint primary key, qty bigint, price numeric(12,2), note text not null)" >/dev/null
write_pipeline "$tmp/entry.yaml" "tables:" "  $topic: {table: $entry}"
entry_at=$(line_of entry "{table: $entry}")
validate entry
check "a tables: entry whose NOT NULL column a nullable field fills fails validation" test "$rc" = 1
check "... at the entry, saying evolve would drop NOT NULL" \
  grep -qF "entry.yaml:$entry_at:" "$tmp/entry.err"
check "... with the reason" \
  grep -qF "error: table $entry cannot take the records of $about: column note is NOT NULL and the field note ([null, string]) may be null; evolve: add_columns would drop NOT NULL" "$tmp/entry.err"
write_pipeline "$tmp/entry_evolve.yaml" "tables:" "  $topic: {table: $entry, evolve: add_columns}"
validate entry_evolve
check "with evolve: add_columns on the entry it passes" test "$rc" = 0
check "... with a warning that it would drop NOT NULL" \
  grep -qF "warning: table $entry: evolve: add_columns would drop NOT NULL of column note for the records of $about" "$tmp/entry_evolve.err"

# A template's table: known from the topic; missing without create_table.
write_pipeline "$tmp/template.yaml" "table: \"{topic}_tpl\""
tpl_at=$(line_of template 'table: "{topic}_tpl"')
validate template
check "a template's table that does not exist fails validation without create_table" test "$rc" = 1
check "... at the template, naming the table it gives the topic" \
  grep -qF "template.yaml:$tpl_at:12: error: table ${topic}_tpl cannot take the records of $about: table ${topic}_tpl does not exist: create it, or set create_table: true" "$tmp/template.err"
write_pipeline "$tmp/template_create.yaml" "table: \"{topic}_tpl\"" "create_table: true"
validate template_create
check "... and passes with create_table: true" test "$rc" = 0

# mode debezium: the columns come from the envelope's `after` record, the key from the Avro key.
dtopic="${topic}_dbz" dtable="${table}_dbz"
"$src/scripts/dev-env" topic "$dtopic" 1 >/dev/null
customers_envelope_avsc >"$tmp/envelope.avsc"
echo '{"type": "record", "name": "Key", "namespace": "etld.test.customers", "fields": [{"name": "id", "type": "int"}]}' \
  >"$tmp/dkey.avsc"
echo '{"key": {"id": 1}, "value": {"before": null, "after": {"id": 1, "email": "a@example.com", "balance": "10.50"}, "source": {"lsn": 100}, "op": "c"}}' \
  >"$tmp/changes.jsonl"
check "the real serializer registers the Debezium envelope and its key" \
  "$avro_produce" --topic "$dtopic" --schema "$tmp/envelope.avsc" --key-schema "$tmp/dkey.avsc" <"$tmp/changes.jsonl"
psql_q "create table $dtable (id integer primary key, email text)" >/dev/null
sed -e "s|topics: \[$topic\]|topics: [$dtopic]|" -e "s|mode: upsert|mode: debezium|" "$tmp/narrow.yaml" \
  | sed -e "s|table: $narrow|table: $dtable|" >"$tmp/dbz.yaml"
validate dbz
check "mode debezium: the after record's field the table lacks fails validation" test "$rc" = 1
check "... naming the column, the type it would have and the envelope's subject" \
  grep -qF "error: table $dtable cannot take the records of topic '$dtopic' (subject $dtopic-value version 1): it has no column balance (the schema's field balance, numeric(12,2)); add it, or set evolve: add_columns" "$tmp/dbz.err"
check "... and only that (the key id from the Avro key, no envelope field as a column)" test "$(grep -c 'error:' "$tmp/dbz.err")" = 1

if [ "$fail" != 0 ]; then
  for f in narrow evolve bad key override map entry entry_evolve template template_create dbz; do
    echo "--- $f.err"; cat "$tmp/$f.err" 2>/dev/null
  done
  echo "--- narrow.yaml"; cat "$tmp/narrow.yaml"
fi >&2
finish
