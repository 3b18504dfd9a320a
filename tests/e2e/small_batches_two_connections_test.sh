#!/usr/bin/env bash
# The configuration docs/performance.md recommends for small batches (the postgres sink at
# concurrency: 2, partition_by: _partition: two connections, each writing its own partitions'
# batches) keeps each key's order and exactly_once across SIGKILLs. 30,000 keyed records (each
# key's versions share a partition) stream into 4 partitions while two etld processes with
# batches of 50 rows read them: one inserts into a table without a key (a duplicate or a loss
# would show), one upserts by key without a guard, with a trigger recording any update that moves
# a key back to an older version (the later record of a key must win in every batch).
source "$(dirname "$0")/exactly_once_lib.sh"

n=30000 kills=5
topic="t_$run_id" eo_table="eo_$run_id" up_table="up_$run_id"
"$src/scripts/dev-env" topic "$topic" 4 >/dev/null

psql_q "create table $up_table (id bigint primary key, v bigint, seq bigint);
        create table ${up_table}_rollbacks (id bigint, old_v bigint, new_v bigint);
        create function ${up_table}_f() returns trigger language plpgsql as \$\$ begin
          if new.v < old.v then insert into ${up_table}_rollbacks values (old.id, old.v, new.v); end if;
          return new; end \$\$;
        create trigger ${up_table}_t before update on $up_table for each row execute function ${up_table}_f();" >/dev/null

# pipeline FILE NAME TABLE MODE_LINES COLUMNS
pipeline() {
  cat >"$1" <<YAML
pipeline: $2
stages:
  in:
    type: kafka
    brokers: \${KAFKA_BROKERS}
    topics: [$topic]
    group: g_$2_$run_id
    revoke_timeout: 3s
    librdkafka: { group.instance.id: "$2-1", session.timeout.ms: "6000", heartbeat.interval.ms: "500" }
  out:
    type: postgres
    inputs: [in]
    concurrency: 2
    partition_by: _partition
    dsn: \${PG_DSN}
    table: $3
    delivery: exactly_once
    offsets_table: offsets_$2_$run_id
    batch: { max_rows: 50, max_wait: 20ms }
$4
YAML
}
pipeline "$tmp/eo.yaml" eo "$eo_table" "    create_table: true
    columns:
      seq: { from: seq, type: bigint, required: true }"
pipeline "$tmp/up.yaml" up "$up_table" "    mode: upsert
    key: [id]
    columns:
      id: { from: id, type: bigint, required: true }
      v: { from: v, type: bigint }
      seq: { from: seq, type: bigint }"
check "the insert pipeline validates" "$etld" validate "$tmp/eo.yaml"
check "the upsert pipeline validates" "$etld" validate "$tmp/up.yaml"

produce_stream "$topic" "$n" 300  # ~3000 records/s: the stream lasts ~10 s
for k in $(seq 1 "$kills"); do
  start eo "$tmp/eo.yaml"
  start up "$tmp/up.yaml"
  sleep "$(python3 -c "import random; print(0.8 + random.random() * 1.5)")"
  kill9 eo
  kill9 up
  echo "kill $k: $(distinct_seqs "$eo_table") records in $eo_table" >&2
done
wait "$producer_pid"
start eo "$tmp/eo.yaml"
start up "$tmp/up.yaml"
check "every record reached the insert table" wait_for 120 at_least "$eo_table" "$n"
up_done() { [[ $(psql_q "select count(*) from $up_table where v = $((n / 500 - 1))") == 500 ]]; }
check "every key reached its newest version in the upsert table" wait_for 60 up_done
check "exactly_once on two connections: count(*) = count(distinct seq) = $n after $kills SIGKILLs" exactly_once_in "$eo_table" "$n"
check "the offsets table matches the rows" test "$(psql_q "select sum(next_offset) from offsets_eo_$run_id")" = "$n"
check "each of the 4 partitions has its offset stored" test "$(psql_q "select count(*) from offsets_eo_$run_id where next_offset > 0")" = 4
check "upsert on two connections: no key was ever moved back to an older version" test "$(psql_q "select count(*) from ${up_table}_rollbacks")" = 0
check "upsert: every key once" test "$(psql_q "select count(*) || '/' || count(distinct id) from $up_table")" = "500/500"
check "the insert run exits 0 on SIGTERM" stop eo
check "the upsert run exits 0 on SIGTERM" stop up
finish
