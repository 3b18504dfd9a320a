#!/usr/bin/env bash
# Numbers reach PostgreSQL exactly, through the real binary, broker and database: records with
# numbers past 64 bits, past double's precision and past its range go kafka -> filter -> map ->
# postgres into numeric, bigint, text and whole-record jsonb columns, and come out with every
# digit; a bigint that does not fit becomes a dead letter with its reason and coordinates while
# the records after it are written; the filter passes its payloads on byte for byte.
source "$(dirname "$0")/lib.sh"
use_services

run_id="num_$(date +%s%N | tail -c 9)"
topic="t_$run_id" table="exact_$run_id" dlq="dead_$run_id"
"$src/scripts/dev-env" topic "$topic" 1 >/dev/null
# One line per record, as produced: KEY<TAB>VALUE.
cat >"$tmp/records" <<'JSON'
a	{"k": "a", "id": 1, "amount": 12345678901234567.89, "big": 18446744073709551615}
b	{"k": "b", "id": 2, "neg": -12345678901234567890, "amount": 1.10}
c	{"k": "c", "id": 12345678901234567890, "n": 1.10}
skip	{"k": "skip", "id": 99}
d	{"k": "d", "id": 3, "amount": 18446744073709551616, "e": 1e400}
e	{"k": "e", "id": 4, "s": "\\u0000", "amount": 100.0}
f	{"k": "f", "id": 5, "s": "\u0000"}
g	{"k": "g", "id": 1e2, "amount": -0.5e-3}
h	{"k": "h", "id": 7.5}
JSON
"$src/scripts/dev-env" produce --keyed "$topic" <"$tmp/records"

cat >"$tmp/p.yaml" <<YAML
pipeline: exact_numbers
stages:
  in:
    type: kafka
    brokers: \${KAFKA_BROKERS}
    topics: [$topic]
    group: g_$run_id
    start_from: earliest
  keep:
    type: filter
    inputs: [in]
    where: "k != 'skip'"
  mark:
    type: map
    inputs: [keep]
    set: { seen: "true" }
  out:
    type: postgres
    inputs: [mark]
    dsn: \${PG_DSN}
    table: $table
    create_table: true
    batch: { max_rows: 100, max_wait: 50ms }
    columns:
      k: { from: k, type: text }
      id: { from: id, type: bigint }
      amount: { from: amount, type: numeric }
      big_text: { from: big, type: text }
      doc: { from: ".", type: jsonb }
    dead_letter: { table: $dlq }
  copy:
    type: file_out
    inputs: [keep]
    path: $tmp/filtered.jsonl
YAML
check "the pipeline validates" "$etld" validate "$tmp/p.yaml"

"$etld" run "$tmp/p.yaml" 2>"$tmp/run.log" &
pid=$!
done_writing() {
  [[ $(rows) -ge 5 ]] && [[ $(psql_q "select count(*) from $dlq" 2>/dev/null || echo 0) -ge 3 ]] &&
    [[ $(wc -l <"$tmp/filtered.jsonl" 2>/dev/null || echo 0) -ge 8 ]]
}
check "the records are written" wait_for 60 done_writing
kill -TERM "$pid"
set +e; wait "$pid"; rc=$?; set -e
pid=
check "etld exits 0" test "$rc" = 0

col() { psql_q "select $1 from $table where k = '$2'"; }
check "numeric keeps 12345678901234567.89" test "$(col amount::text a)" = "12345678901234567.89"
check "text keeps 18446744073709551615" test "$(col big_text a)" = "18446744073709551615"
check "jsonb keeps 18446744073709551615" test "$(col "doc->>'big'" a)" = "18446744073709551615"
check "jsonb keeps 12345678901234567.89" test "$(col "doc->>'amount'" a)" = "12345678901234567.89"
check "a field the map did not touch keeps its text" test "$(col "doc->>'neg'" b)" = "-12345678901234567890"
check "numeric keeps the scale of 1.10" test "$(col amount::text b)" = "1.10"
check "jsonb keeps 1.10" test "$(col "doc->>'amount'" b)" = "1.10"
check "numeric keeps 18446744073709551616" test "$(col amount::text d)" = "18446744073709551616"
check "jsonb keeps 1e400" test "$(col "(doc->'e')::numeric = 1e400" d)" = "t"
check "the map's own field is there" test "$(col "doc->>'seen'" d)" = "true"
check "jsonb keeps a backslash followed by u0000" test "$(col "doc->>'s'" e)" = '\u0000'
check "numeric keeps 100.0" test "$(col amount::text e)" = "100.0"
check "bigint takes 1e2 as 100" test "$(col id g)" = "100"
check "numeric keeps -0.5e-3's value" test "$(col amount::text g)" = "-0.0005"
check "exactly the five good records are rows" test "$(rows)" = 5

dl() { psql_q "select $1 from $dlq where convert_from(key, 'UTF8') = '$2'"; }
check "an out-of-range bigint is a dead letter with its reason" \
  test "$(dl error c)" = "column id (bigint): 12345678901234567890 out of range"
check "... and its coordinates" test "$(dl "topic || '/' || \"partition\" || '/' || \"offset\"" c)" = "$topic/0/2"
check "a NUL in a jsonb string is a dead letter saying so" \
  test "$(dl error f)" = "column doc (jsonb): a string holds the character \\u0000 (NUL), which jsonb cannot store"
check "a bigint with a fraction is a dead letter, not rounded" \
  test "$(dl error h)" = "column id (bigint): 7.5 is not an integer"
check "three dead letters" test "$(psql_q "select count(*) from $dlq")" = 3

# What the filter passed on, as the file sink wrote it: the payloads as produced.
grep -v '^skip' "$tmp/records" | cut -f2 >"$tmp/expected.jsonl"
check "the filter passes payloads on byte for byte" cmp "$tmp/expected.jsonl" "$tmp/filtered.jsonl"

if [ "$fail" != 0 ]; then
  psql_q "select k, id, amount, big_text, doc from $table" >&2 || true
  psql_q "select convert_from(key, 'UTF8'), error from $dlq" >&2 || true
  tail -20 "$tmp/run.log" >&2
fi
finish
