#!/usr/bin/env bash
# Replays and backfills against the real broker and PostgreSQL: records are produced in three
# batches a second apart, A, B and C, and the live pipeline (stop_at_end) loads them all under
# its group. `etld replay --from T1 --to T2` (the times between the batches) then loads exactly
# batch B into the emptied table and exits 0 by itself, `--group` without --to loads B and C, and
# the live group's committed offsets stay as they were; under exactly_once, its rows of the offsets
# table stay as they were too. start_at/stop_at with explicit offsets
# read exactly those, and bad values are refused by validate at their file:line:column.
source "$(dirname "$0")/lib.sh"
use_services

run_id="rp_$(date +%s%N | tail -c 9)"
topic="t_$run_id" table="orders_$run_id" live="g_$run_id"
"$src/scripts/dev-env" topic "$topic" 2 >/dev/null
now() { date -u +%Y-%m-%dT%H:%M:%S.%3NZ; }
batch() {  # batch FIRST LAST: ids FIRST..LAST, keyed by id
  seq "$1" "$2" | awk '{printf "%d\t{\"id\": %d, \"note\": \"order %d\"}\n", $1, $1, $1}' |
    "$src/scripts/dev-env" produce --keyed "$topic"
}
batch 1 100
sleep 1.2; t1=$(now); sleep 1.2
batch 101 200
sleep 1.2; t2=$(now); sleep 1.2
batch 201 300

cat >"$tmp/p.yaml" <<YAML
pipeline: replay
stages:
  in:
    type: kafka
    brokers: \${KAFKA_BROKERS}
    topics: [$topic]
    group: $live
    stop_at_end: true
  out:
    type: postgres
    inputs: [in]
    dsn: \${PG_DSN}
    table: $table
    create_table: true
    mode: upsert
    key: [id]
    guard: version
    columns:
      id: { from: id, type: bigint, required: true }
      note: { from: note, type: text }
      version: { from: _offset, type: bigint }
YAML
check "the live pipeline loads every record and ends" timeout 120 "$etld" run "$tmp/p.yaml" 2>"$tmp/live.log"
check "the live table holds 300 rows" rows_are 300
"$src/scripts/dev-env" offsets "$live" | sort >"$tmp/live-offsets"
check "the live group committed both partitions" test "$(wc -l <"$tmp/live-offsets")" = 2

ids() { psql_q "select count(*) || ' ' || min(id) || ' ' || max(id) || ' ' || count(distinct id) from $table"; }
psql_q "truncate $table" >/dev/null
check "etld replay --from --to exits 0 by itself" timeout 120 "$etld" replay "$tmp/p.yaml" --from "$t1" --to "$t2" 2>"$tmp/replay1.log"
check "exactly the range arrived: ids 101..200" test "$(ids)" = "100 101 200 100"
check "the replay ran under its own group" grep -q "as group '$live-replay-" "$tmp/replay1.log"
check "the live group's offsets are unchanged" diff "$tmp/live-offsets" <("$src/scripts/dev-env" offsets "$live" | sort)
replay_group=$(grep -o "as group '$live-replay-[0-9TZ]*'" "$tmp/replay1.log" | head -1 | tr -d "'" | sed 's/as group //')
check "the replay group committed the range's end" \
  test "$("$src/scripts/dev-env" offsets "$replay_group" | awk '{s += $3} END {print s}')" = 200

check "etld replay --group without --to exits 0" timeout 120 "$etld" replay "$tmp/p.yaml" --from "$t1" --group "g2_$run_id" 2>"$tmp/replay2.log"
check "the range up to the end arrived: ids 101..300" test "$(ids)" = "200 101 300 200"
check "the named group committed the end" \
  test "$("$src/scripts/dev-env" offsets "g2_$run_id" | awk '{s += $3} END {print s}')" = 300
check "the live group's offsets are still unchanged" diff "$tmp/live-offsets" <("$src/scripts/dev-env" offsets "$live" | sort)

# exactly_once: the positions live in the offsets table; the replay's group has rows of its own
# there, the live group's rows stay as they were.
table="eo_$run_id"
cat >"$tmp/eo.yaml" <<YAML
pipeline: replay_eo
stages:
  in:
    type: kafka
    brokers: \${KAFKA_BROKERS}
    topics: [$topic]
    group: geo_$run_id
    stop_at_end: true
  out:
    type: postgres
    inputs: [in]
    dsn: \${PG_DSN}
    table: $table
    create_table: true
    delivery: exactly_once
    columns:
      id: { from: id, type: bigint }
    dead_letter: { table: eo_dead_$run_id }
YAML
eo_rows() { psql_q "select consumer_group, topic, partition, next_offset, epoch from etld_offsets where consumer_group like 'geo_$run_id%' order by 1, 3"; }
check "the exactly_once live pipeline loads every record" timeout 120 "$etld" run "$tmp/eo.yaml" 2>"$tmp/eo-live.log"
eo_rows >"$tmp/eo-live-offsets"
check "the live group's positions are stored" test "$(wc -l <"$tmp/eo-live-offsets")" = 2
check "an exactly_once replay exits 0" timeout 120 "$etld" replay "$tmp/eo.yaml" --from "$t1" --to "$t2" 2>"$tmp/eo-replay.log"
check "it appended exactly the range once more" \
  test "$(psql_q "select count(*) || ' ' || count(distinct id) || ' ' || min(id) || ' ' || max(id) from $table where id in (select id from $table group by id having count(*) = 2)")" = "200 100 101 200"
check "the table holds the live load and the range" rows_are 400
check "the live group's stored positions are unchanged" diff "$tmp/eo-live-offsets" <(eo_rows | grep -v -- '-replay-')
check "the replay's group stored its own" test "$(eo_rows | grep -c -- "geo_$run_id-replay-")" = 2

# Explicit offsets: partitions 0 and 1 from offset 5 up to 15, 20 records.
table="offsets_$run_id"
sed -e "s/stop_at_end: true/start_at: {$topic: {0: 5, 1: 5}}\n    stop_at: {$topic: {0: 15, 1: 15}}/" \
  -e "s/group: $live/group: g3_$run_id/" -e "s/table: orders_$run_id/table: $table/" "$tmp/p.yaml" >"$tmp/offsets.yaml"
check "a run with explicit offsets exits 0" timeout 120 "$etld" run "$tmp/offsets.yaml" 2>"$tmp/offsets.log"
check "exactly those offsets arrived" \
  test "$(psql_q "select count(*) || ' ' || min(version) || ' ' || max(version) from $table")" = "20 5 14"

# Bad values: refused by validate at their line and column, and by replay before anything runs.
sed "s/stop_at_end: true/start_at: yesterday\n    stop_at: end/" "$tmp/p.yaml" >"$tmp/bad1.yaml"
check "validate refuses a start_at that is no time" bash -c \
  "'$etld' validate '$tmp/bad1.yaml' 2>&1 | grep -q 'bad1.yaml:8:[0-9]*: .*start_at .yesterday. is not earliest nor an RFC 3339 time'"
sed "s/stop_at_end: true/start_at: earliest\n    stop_at: {$topic: {zero: 3}}/" "$tmp/p.yaml" >"$tmp/bad2.yaml"
check "validate refuses a partition that is no number" bash -c \
  "'$etld' validate '$tmp/bad2.yaml' 2>&1 | grep -q 'bad2.yaml:9:.*partitions and offsets are whole numbers'"
sed "s/stop_at_end: true/start_at: earliest/" "$tmp/p.yaml" >"$tmp/bad3.yaml"
check "validate refuses start_at without stop_at" bash -c \
  "'$etld' validate '$tmp/bad3.yaml' 2>&1 | grep -q 'bad3.yaml:8:.*start_at needs stop_at'"
"$etld" replay "$tmp/p.yaml" --from yesterday >/dev/null 2>"$tmp/usage.log" && rc=0 || rc=$?
check "replay refuses a --from that is no time (exit 2)" test "$rc" = 2
check "...saying why" grep -q "'yesterday' is not an RFC 3339 time" "$tmp/usage.log"
finish
