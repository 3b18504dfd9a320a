#!/usr/bin/env bash
# Crash safety through the real binary: 100,000 records stream into a 4-partition topic while two
# etld processes read it, one with delivery: exactly_once into a table without a key, one with
# at_least_once upserts guarded by a version column; both are SIGKILLed at random moments (at
# least ten times) and restarted. Afterwards the exactly-once table holds every record exactly
# once, and the at-least-once table holds every key at its newest version, with a trigger
# proving that no replay ever rolled a row back to an older version.
source "$(dirname "$0")/exactly_once_lib.sh"

n=100000 kills=12
topic="t_$run_id" eo_table="eo_$run_id" alo_table="alo_$run_id"
"$src/scripts/dev-env" topic "$topic" 4 >/dev/null
eo_pipeline "$tmp/eo.yaml" "g_eo_$run_id" "$eo_table" "eo-1"

# The at-least-once table: the guard keeps the newest version; the trigger records any update
# that would move a row back.
psql_q "create table $alo_table (id bigint primary key, v bigint, seq bigint);
        create table ${alo_table}_rollbacks (id bigint, old_v bigint, new_v bigint);
        create function ${alo_table}_f() returns trigger language plpgsql as \$\$ begin
          if new.v < old.v then insert into ${alo_table}_rollbacks values (old.id, old.v, new.v); end if;
          return new; end \$\$;
        create trigger ${alo_table}_t before update on $alo_table for each row execute function ${alo_table}_f();" >/dev/null
cat >"$tmp/alo.yaml" <<YAML
pipeline: alo
stages:
  in:
    type: kafka
    brokers: \${KAFKA_BROKERS}
    topics: [$topic]
    group: g_alo_$run_id
    commit_interval: 300ms
    librdkafka: { group.instance.id: "alo-1", session.timeout.ms: "6000", heartbeat.interval.ms: "500" }
  out:
    type: postgres
    inputs: [in]
    dsn: \${PG_DSN}
    table: $alo_table
    mode: upsert
    key: [id]
    guard: v
    max_demand: 2000
    batch: { max_rows: 1000, max_wait: 20ms }
    columns:
      id: { from: id, type: bigint, required: true }
      v: { from: v, type: bigint }
      seq: { from: seq, type: bigint }
YAML
check "the exactly-once pipeline validates" "$etld" validate "$tmp/eo.yaml"
check "the at-least-once pipeline validates" "$etld" validate "$tmp/alo.yaml"

produce_stream "$topic" "$n" 500  # ~5000 records/s: the stream lasts ~20 s
for k in $(seq 1 "$kills"); do
  start eo "$tmp/eo.yaml"
  start alo "$tmp/alo.yaml"
  # Some kills right after start (claims, joins), most mid-stream.
  sleep "$(python3 -c "import random; print(random.choice([0.3, 0.8]) + random.random() * 1.7)")"
  kill9 eo
  kill9 alo
  echo "kill $k: $(distinct_seqs "$eo_table") records in $eo_table" >&2
done
wait "$producer_pid"
start eo "$tmp/eo.yaml"
start alo "$tmp/alo.yaml"
check "every record reached the exactly-once table" wait_for 120 at_least "$eo_table" "$n"
alo_done() { [[ $(psql_q "select count(*) from $alo_table where v = $((n / 500 - 1))") == 500 ]]; }
check "every key reached its newest version in the at-least-once table" wait_for 60 alo_done
check "exactly_once: count(*) = count(distinct seq) = $n after $kills SIGKILLs" exactly_once_in "$eo_table" "$n"
check "exactly_once: the offsets table matches the rows" test "$(psql_q "select sum(next_offset) from offsets_$run_id where consumer_group = 'g_eo_$run_id'")" = "$n"
check "at_least_once with a guard: no row was ever rolled back" test "$(psql_q "select count(*) from ${alo_table}_rollbacks")" = 0
check "at_least_once: every key once" test "$(psql_q "select count(*) || '/' || count(distinct id) from $alo_table")" = "500/500"
check "the exactly-once run exits 0 on SIGTERM" stop eo
check "the at-least-once run exits 0 on SIGTERM" stop alo
check "claims were logged with their epochs" grep -q "claimed in PostgreSQL table offsets_$run_id" "$tmp/eo.$((kills + 1)).log"
finish
