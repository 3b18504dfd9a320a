#!/usr/bin/env bash
# A postgres sink without `columns:` fed JSON records (no schema) learns its columns from them,
# with the real binary, broker and PostgreSQL: each field's column typed by its first value
# (integer bigint, other numbers numeric with every digit, string text, boolean, object and array
# jsonb), a field first seen mid-stream added by evolve: add_columns. Without evolve, a record
# with a field the table lacks is a dead letter naming it, and only that record: the records after
# it, which lack the field, still land.
source "$(dirname "$0")/lib.sh"
use_services
check_says_ok=1
run_id="scj_$(date +%s%N | tail -c 9)"

# run TOPIC TABLE EXTRA: produces stdin's KEY<TAB>VALUE lines to TOPIC, runs etld (upsert without
# columns, EXTRA lines added to the sink) until TABLE and its dead letters hold WANT_ROWS/WANT_DEAD
# rows (waiting up to 60 s), then stops it.
run() {
  local topic=$1 tbl=$2 extra=$3
  "$src/scripts/dev-env" topic "$topic" 1 >/dev/null
  "$src/scripts/dev-env" produce --keyed "$topic" 2>/dev/null
  cat >"$tmp/$tbl.yaml" <<YAML
pipeline: json_columns
stages:
  in:
    type: kafka
    brokers: \${KAFKA_BROKERS}
    topics: [$topic]
    group: g_$tbl
  out:
    type: postgres
    inputs: [in]
    dsn: \${PG_DSN}
    table: $tbl
    mode: upsert
    batch: { max_rows: 100, max_wait: 20ms }
$extra
YAML
  check "$tbl: the pipeline validates" "$etld" validate "$tmp/$tbl.yaml"
  "$etld" run "$tmp/$tbl.yaml" 2>"$tmp/$tbl.log" &
  pid=$!
  settled() { [[ $(psql_q "select count(*) from $tbl")/$(psql_q "select count(*) from ${tbl}_dead_letters") == "$want" ]]; }
  wait_for 60 settled 2>/dev/null || true
  kill -TERM "$pid"
  wait "$pid" || true
  pid=
}
col_type() { psql_q "select format_type(atttypid, atttypmod) from pg_attribute where attrelid = '$1'::regclass and attname = '$2'"; }

# --- evolve: add_columns, the table created from the first records.
table="learnt_$run_id" want=3/0
printf '%s\n' \
  $'{"id":1}\t{"id":1,"n":12345678901234567,"price":1234567890.123456789012,"name":"a\\tb","ok":true,"tags":[1,2],"doc":{"x":1},"later":null}' \
  $'{"id":2}\t{"id":2,"n":-1,"price":0.10,"name":"","ok":false,"tags":[],"doc":{}}' \
  $'{"id":3}\t{"id":3,"n":3,"later":"now"}' |
  run "t_$table" "$table" "    create_table: true
    evolve: add_columns"
check "every record landed" test "$(psql_q "select string_agg(id::text, ',' order by id) from $table")" = 1,2,3
check "columns typed by their first values" test \
  "$(for c in id n price name ok tags doc later; do col_type "$table" "$c"; done | paste -sd,)" = \
  "bigint,bigint,numeric,text,boolean,jsonb,jsonb,text"
check "the key is the JSON key's field" test \
  "$(psql_q "select string_agg(a.attname, ',') from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey) where i.indrelid = '$table'::regclass and i.indisprimary")" = id
check "values exact" test "$(psql_q "select n || '|' || price || '|' || name || '|' || ok || '|' || tags || '|' || doc from $table where id = 1")" = \
  $'12345678901234567|1234567890.123456789012|a\tb|true|[1, 2]|{"x": 1}'
check "... numbers as written" test "$(psql_q "select price::text from $table where id = 2")" = 0.10
check "a field first seen mid-stream got its column, NULL before" test \
  "$(psql_q "select string_agg(coalesce(later, '-'), ',' order by id) from $table")" = "-,-,now"
check "the log says the column was added" grep -q "table $table: added column later text" "$tmp/$table.log"

# --- no evolve: a field the table lacks makes that record, and only it, a dead letter.
table="fixed_$run_id" want=3/1
psql_q "create table $table (id bigint primary key, a bigint)" >/dev/null
printf '%s\n' $'{"id":1}\t{"id":1,"a":1}' $'{"id":2}\t{"id":2,"a":2,"b":2}' $'{"id":3}\t{"id":3,"a":3}' \
  $'{"id":4}\t{"id":4}' | run "t_$table" "$table" ""
check "without evolve: the records without the new field landed, before and after it" \
  test "$(psql_q "select string_agg(id || '=' || coalesce(a::text, '-'), ',' order by id) from $table")" = "1=1,3=3,4=-"
check "without evolve: the record with it is the one dead letter, naming the column" test \
  "$(psql_q "select string_agg(\"offset\" || ': ' || error, ' | ') from ${table}_dead_letters")" = \
  "1: table $table: it has no column b (the schema's field b, bigint); add it, or set evolve: add_columns"
[[ $fail == 0 ]] || { tail -20 "$tmp/$table.log"; psql_q "select \"offset\", error from ${table}_dead_letters"; } >&2
finish
