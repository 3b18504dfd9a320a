#!/usr/bin/env bash
# Many topics into many tables through one postgres sink, with the real binary, broker and
# PostgreSQL: a topic_pattern source and table: "{topic}". Three topics, the third created while
# etld runs (the source picks it up, the sink creates its table), a poison record in one of them:
# only that table's dead letters grow and the other two tables are exact. Then the same under
# delivery: exactly_once, SIGKILLed mid-stream several times: every table ends exact (each record
# once) with exactly one dead letter, and the offsets table matches the rows.
source "$(dirname "$0")/exactly_once_lib.sh"

n=3000
pre="rt_${run_id}"

# pipeline FILE PREFIX GROUP [DELIVERY]: every topic PREFIX_* into the table of its own name.
pipeline() {
  local file=$1 prefix=$2 group=$3 delivery=${4:-at_least_once}
  cat >"$file" <<YAML
pipeline: routing
stages:
  in:
    type: kafka
    brokers: \${KAFKA_BROKERS}
    topic_pattern: '${prefix}_.*'
    group: $group
    commit_interval: 300ms
    librdkafka: { group.instance.id: "$group", session.timeout.ms: "6000", heartbeat.interval.ms: "500", topic.metadata.refresh.interval.ms: "1000" }
  out:
    type: postgres
    inputs: [in]
    dsn: \${PG_DSN}
    table: "{topic}"
    create_table: true
    delivery: $delivery
    offsets_table: offsets_$run_id
    max_demand: 2000
    batch: { max_rows: 500, max_wait: 20ms }
    columns:
      seq: { from: seq, type: bigint, required: true }
      part: { from: _partition, type: integer }
      off: { from: _offset, type: bigint }
YAML
  [[ $delivery == exactly_once ]] || sed -i '/offsets_table/d' "$file"
}

# produce TOPIC N [POISON_AT] [PER_TENTH]: N records {seq} (and, before seq POISON_AT, one whose seq
# is not a number), PER_TENTH every 0.1 s, in the background.
produce() {
  local topic=$1 count=$2 poison=${3:--1} rate=${4:-500}
  python3 -u - "$count" "$poison" "$rate" <<'PY' | "$src/scripts/dev-env" produce --keyed "$topic" 2>>"$tmp/producer.log" &
import json, sys, time
n, poison, rate = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    if i == poison:
        print("poison\t" + json.dumps({"seq": "not a number"}))
    print(f"{i % 50}\t" + json.dumps({"seq": i}))
    if (i + 1) % rate == 0:
        sys.stdout.flush()
        time.sleep(0.1)
PY
  bg_pids+=($!)
}
exact() { exactly_once_in "$1" "$2"; }
count_of() { psql_q "select count(*) from \"$1\"" || echo -1; }

# --- at least once: three topics, the third created while etld runs.
for t in a b; do "$src/scripts/dev-env" topic "${pre}_$t" 2 >/dev/null; done
pipeline "$tmp/alo.yaml" "$pre" "g_$pre"
check "the pipeline with a table template validates" "$etld" validate "$tmp/alo.yaml"
produce "${pre}_a" "$n"
produce "${pre}_b" "$n" $((n / 2))
start alo "$tmp/alo.yaml"
check "topic a reached its table" wait_for 60 exact "${pre}_a" "$n"
"$src/scripts/dev-env" topic "${pre}_c" 2 >/dev/null
produce "${pre}_c" "$n"
check "topic b reached its table, but its poison record" wait_for 60 exact "${pre}_b" "$n"
check "topic c, created while etld ran, got its table" wait_for 90 exact "${pre}_c" "$n"
check "the poison record is in b's dead letters" test "$(count_of "${pre}_b_dead_letters")" = 1
check "its reason names the table and the column" test "$(psql_q "select error from \"${pre}_b_dead_letters\"")" = \
  "table ${pre}_b: column seq (bigint): 'not a number' is not an integer"
check "a's and c's dead letters stay empty" test "$(count_of "${pre}_a_dead_letters")/$(count_of "${pre}_c_dead_letters")" = 0/0
check "the at-least-once run exits 0 on SIGTERM" stop alo

# --- exactly once, SIGKILLed mid-stream.
eo="eo${pre}"
for t in a b c; do "$src/scripts/dev-env" topic "${eo}_$t" 2 >/dev/null; done
pipeline "$tmp/eo.yaml" "$eo" "g_$eo" exactly_once
check "the exactly-once pipeline validates" "$etld" validate "$tmp/eo.yaml"
eo_n=6000  # ~400 records a second per topic: the stream lasts ~15 s
produce "${eo}_a" "$eo_n" -1 40
produce "${eo}_b" "$eo_n" $((eo_n / 3)) 40
produce "${eo}_c" "$eo_n" -1 40
eo_total() { echo $(($(distinct_seqs "${eo}_a") + $(distinct_seqs "${eo}_b") + $(distinct_seqs "${eo}_c"))); }
grew() { (($(eo_total) > $1)); }
mid_stream=0
for k in 1 2 3 4 5; do
  before=$(eo_total)
  start eo "$tmp/eo.yaml"
  # Killed once it has committed something more, at a random moment after.
  wait_for 30 grew "$before" || true
  sleep "$(python3 -c "import random; print(random.random() * 0.6)")"
  kill9 eo
  total=$(eo_total)
  ((total < 3 * eo_n)) && mid_stream=$((mid_stream + 1))
  echo "kill $k: $total of $((3 * eo_n)) records" >&2
done
check "at least 2 of the 5 SIGKILLs came mid-stream" test "$mid_stream" -ge 2
start eo "$tmp/eo.yaml"
for t in a b c; do
  check "exactly_once: table $t holds each of its $eo_n records once after 5 SIGKILLs" wait_for 120 exact "${eo}_$t" "$eo_n"
done
check "exactly_once: one dead letter, in b's table" test \
  "$(count_of "${eo}_a_dead_letters")/$(count_of "${eo}_b_dead_letters")/$(count_of "${eo}_c_dead_letters")" = 0/1/0
check "exactly_once: the offsets table matches the rows and the dead letter" test \
  "$(psql_q "select sum(next_offset) from offsets_$run_id where consumer_group = 'g_$eo'")" = $((3 * eo_n + 1))
check "the exactly-once run exits 0 on SIGTERM" stop eo
finish
