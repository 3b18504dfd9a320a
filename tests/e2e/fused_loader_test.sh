#!/usr/bin/env bash
# bench/tools/fused_loader.cpp, the hand-written limit bench/run compares etld with, loads exactly
# what was produced: every record once (count and sum of ids), each value as written (COPY
# escapes, a numeric's digits, nulls, fields in any order), upserts through the staging table
# (the last version of a key in a batch wins), its consumer group's offsets committed to the end;
# and a record that does not fit its column (or names a field twice) stops it with the record's
# topic/partition/offset.
source "$(dirname "$0")/lib.sh"
use_services
# From ctest (tests/CMakeLists.txt), else beside the etld binary as bench/run finds them.
fused=${ETLD_FUSED_LOADER:-$(dirname "$etld")/bench/fused_loader}
kafka_tool=${ETLD_KAFKA_TOOL:-$(dirname "$etld")/bench/kafka_tool}
[[ -x $fused && -x $kafka_tool ]] || { echo "FAIL: $fused or $kafka_tool not built (ETLD_BENCH=ON)" >&2; exit 1; }
run_id=$(date +%s%N | tail -c 9)
cols="id bigint, customer text, amount numeric, status text, created_at timestamptz, note text"
wide_cols="$cols$(for f in $(seq -w 0 13); do printf ', f%s text' "$f"; done)"
make_table() { psql_q "drop table if exists $1; create table $1 ($2)" >/dev/null; }
# committed GROUP: the sum of the group's committed offsets.
committed() { "$src/scripts/dev-env" offsets "$1" | awk '{s += $3} END {print s + 0}'; }

n=30000
topic=fused_narrow_$run_id
"$src/scripts/dev-env" topic "$topic" 4 >/dev/null
"$kafka_tool" produce "$KAFKA_BROKERS" "$topic" "$n" narrow >/dev/null

# Narrow insert, batches of 1,000 rows: every record once, values as bench/tools/records.hpp makes them.
table=fused_ins_$run_id
make_table "$table" "$cols"
out=$("$fused" "$KAFKA_BROKERS" "$topic" "g_$table" "$PG_DSN" "$table" "$n" narrow insert 1000 100)
check "insert reports $n rows" grep -q "\"rows\":$n," <<<"$out"
check "insert: $n rows, each id once, sum of ids" \
  test "$(psql_q "select count(*), count(distinct id), sum(id) from $table")" = "$n|$n|$((n * (n - 1) / 2))"
check "insert: record 12345's values" test "$(psql_q "select customer, amount::text, status, note,
  created_at = '2026-11-26T03:25:45.345Z' from $table where id = 12345")" = \
  "cust-012345|12345.45|pending|order 12345 for customer 12345, standard delivery|t"
check "insert: offsets committed to the end" test "$(committed "g_$table")" = "$n"
check "insert: CPU seconds reported" grep -Eq '"cpu_s":[0-9]+\.[0-9]+' <<<"$out"

# Upsert, twice over the topic (the second run updates every row): still one row per id.
table=fused_ups_$run_id
make_table "$table" "$cols, primary key (id)"
for g in a b; do
  "$fused" "$KAFKA_BROKERS" "$topic" "g_${table}_$g" "$PG_DSN" "$table" "$n" narrow upsert 10000 100 >/dev/null
done
check "upsert twice: $n rows, sum of ids" test "$(psql_q "select count(*), sum(id) from $table")" = \
  "$n|$((n * (n - 1) / 2))"

# Hand-made records on one partition: escapes, digits, nulls, field order, an escaped key, and the
# same key twice in one upsert batch.
topic=fused_values_$run_id
"$src/scripts/dev-env" topic "$topic" 1 >/dev/null
printf '%s\n' \
  '{"note":"tab\there\nnl \\ back\r","\u0069d":7,"amount":12345678901234567890.123456789,"customer":null,"status":"x","created_at":"2026-01-02T03:04:05.678+02:00"}' \
  '{"id":8,"customer":"first","amount":"-0.5e-3","status":true,"extra":{"a":[1,2]}}' \
  '{"id":8,"customer":"second","amount":1.10}' | "$src/scripts/dev-env" produce "$topic"
table=fused_vals_$run_id
make_table "$table" "$cols"
"$fused" "$KAFKA_BROKERS" "$topic" "g_$table" "$PG_DSN" "$table" 3 narrow insert 10000 100 >/dev/null
check "values: escapes kept" test "$(psql_q "select note = E'tab\\there\\nnl \\\\ back\\r' from $table where id = 7")" = t
check "values: a numeric's digits, nulls, the zone" test "$(psql_q "select amount::text, customer is null,
  created_at = '2026-01-02T01:04:05.678Z', status from $table where id = 7")" = \
  "12345678901234567890.123456789|t|t|x"
check "values: a numeric in a string, a boolean as text, a missing field null" test "$(psql_q "select amount::text,
  status, created_at is null from $table where customer = 'first'")" = "-0.0005|true|t"
check "values: trailing zeros kept" test "$(psql_q "select amount::text from $table where customer = 'second'")" = "1.10"
table=fused_vals_up_$run_id
make_table "$table" "$cols, primary key (id)"
"$fused" "$KAFKA_BROKERS" "$topic" "g_$table" "$PG_DSN" "$table" 3 narrow upsert 10000 100 >/dev/null
check "upsert: the last version of a key in a batch wins" \
  test "$(psql_q "select string_agg(id || ':' || coalesce(customer, '-'), ',' order by id) from $table")" = "7:-,8:second"

# Wide insert.
topic=fused_wide_$run_id
"$src/scripts/dev-env" topic "$topic" 2 >/dev/null
"$kafka_tool" produce "$KAFKA_BROKERS" "$topic" 2000 wide >/dev/null
table=fused_wide_$run_id
make_table "$table" "$wide_cols"
"$fused" "$KAFKA_BROKERS" "$topic" "g_$table" "$PG_DSN" "$table" 2000 wide insert 10000 100 >/dev/null
check "wide: 2000 rows, sum of ids, the last text field" test "$(psql_q "select count(*), sum(id), min(f13) from $table")" = "2000|1999000|field 13 of record 000000000000: lorem ipsum dolor sit amet"

# A record that does not fit (id beyond bigint): exit 1 with where it is; its batch is not written.
topic=fused_bad_$run_id
"$src/scripts/dev-env" topic "$topic" 1 >/dev/null
printf '%s\n' '{"id":1}' '{"id":99999999999999999999}' | "$src/scripts/dev-env" produce "$topic"
table=fused_bad_$run_id
make_table "$table" "$cols"
status=0
"$fused" "$KAFKA_BROKERS" "$topic" "g_$table" "$PG_DSN" "$table" 2 narrow insert 10000 100 >/dev/null \
  2>"$tmp/bad.err" || status=$?
check "bad record: exit status 1" test "$status" = 1
check "bad record: its topic/partition/offset and column" grep -q "record $topic/0@1: column id: not a bigint" "$tmp/bad.err"
check "bad record: nothing of its batch written" test "$(psql_q "select count(*) from $table")" = 0

# A field named twice: which one a reader keeps is not defined (RFC 8259), so it is refused.
topic=fused_twice_$run_id
"$src/scripts/dev-env" topic "$topic" 1 >/dev/null
printf '%s\n' '{"id":1,"note":"a","id":2}' | "$src/scripts/dev-env" produce "$topic"
status=0
"$fused" "$KAFKA_BROKERS" "$topic" "g_twice_$table" "$PG_DSN" "$table" 1 narrow insert 10000 100 >/dev/null \
  2>"$tmp/twice.err" || status=$?
check "a field named twice: exit status 1 with the reason" grep -q "record $topic/0@0: field id appears twice" "$tmp/twice.err"
check "a field named twice: exit status 1" test "$status" = 1

psql_q "drop table if exists fused_ins_$run_id, fused_ups_$run_id, fused_vals_$run_id, fused_vals_up_$run_id,
  fused_wide_$run_id, fused_bad_$run_id" >/dev/null
finish
