#!/usr/bin/env bash
# The connector metrics of the real binary against the real broker and PostgreSQL: a
# kafka -> map -> postgres pipeline moves N records (plus two poison ones) while /metrics is
# scraped; the kafka and postgres metrics must agree with the broker and the table (rows
# written = rows in the table, dead letters = rows in the dead-letter table, committed offsets =
# messages produced, lag 0 at the end). A second run against a PostgreSQL that is not there must
# be unready (503 naming the sink) with the connection gauge at 0, retries counting and the sink
# stalled (etld_stage_stalled_seconds).
source "$(dirname "$0")/lib.sh"
use_services

n=5000
run_id="adm_$(date +%s%N | tail -c 9)"
topic="t_$run_id" table="rows_$run_id" dlq="dead_$run_id"
"$src/scripts/dev-env" topic "$topic" 3 >/dev/null
python3 - "$n" <<'PY' | "$src/scripts/dev-env" produce --keyed "$topic"
import json, sys
n = int(sys.argv[1])
for i in range(1, n + 1):
    print(f"{i}\t" + json.dumps({"id": i}))
    if i == n // 2:
        print("bad1\t{broken json")
        print("bad2\t" + json.dumps({"id": "not a number"}))
PY

start() {  # $1 config; sets pid and base
  start_etld "$1"
  base="http://$admin"
}
scrape() { curl -sf "$base/metrics" | python3 "$promcheck" >"$tmp/samples"; }
sum_metric() { awk -v k="$1" 'index($0, k) == 1 {s += $NF} END {print s + 0}' "$tmp/samples"; }
labels='instance="0",pipeline="metrics_e2e",stage='

kafka_map_postgres "$tmp/p.yaml" metrics_e2e dead_letter="$dlq"
start "$tmp/p.yaml"
# Done when every record is in, the offsets of all n+2 messages are committed and lag is 0.
for _ in $(seq 1 600); do
  if scrape 2>/dev/null; then
    committed=$(sum_metric "etld_kafka_partition_committed_offset{")
    lag_series=$(grep -c '^etld_kafka_consumer_lag{' "$tmp/samples" || true)
    lag=$(sum_metric "etld_kafka_consumer_lag{")
    [ "$(rows)" = "$n" ] && [ "$committed" = $((n + 2)) ] && [ "$lag_series" = 3 ] && [ "$lag" = 0 ] && break
  fi
  sleep 0.1
done
check "the metrics are well-formed" scrape
table_rows=$(rows)
dead_rows=$(psql_q "select count(*) from $dlq")
echo "table $table_rows rows, $dead_rows dead letters; committed $committed; lag $lag over $lag_series partitions" >&2
check "every record reached the table" test "$table_rows" = "$n"
check "etld_postgres_rows_written_total equals the rows in the table" \
  test "$(metric "etld_postgres_rows_written_total{${labels}\"out\"}")" = "$table_rows"
check "etld_postgres_dead_letters_total equals the rows in the dead-letter table" \
  test "$(metric "etld_postgres_dead_letters_total{${labels}\"out\"}")/$dead_rows" = "2/2"
batches=$(metric "etld_postgres_batches_total{${labels}\"out\"}")
check "batches are counted" test "${batches%.*}" -gt 0
check "the batch size histogram counts every batch and sums to every row" \
  test "$(metric "etld_postgres_batch_rows_count{${labels}\"out\"}")/$(metric "etld_postgres_batch_rows_sum{${labels}\"out\"}")" = "$batches/$((n + 2))"
check "the batch latency histogram counts every batch" \
  test "$(metric "etld_postgres_batch_seconds_count{${labels}\"out\"}")" = "$batches"
check "etld_postgres_connected is 1" test "$(metric "etld_postgres_connected{${labels}\"out\"}")" = 1
check "no retries against a healthy server" test "$(metric "etld_postgres_retries_total{${labels}\"out\"}")" = 0
check "three partitions assigned" test "$(metric "etld_kafka_assigned_partitions{${labels}\"in\"}")" = 3
check "a consumer lag per partition, all 0 once caught up" test "$lag_series/$lag" = "3/0"
check "committed offsets add up to the messages produced" test "$committed" = $((n + 2))
check "librdkafka's prefetch queue per partition, empty once caught up" \
  test "$(grep -c '^etld_kafka_partition_prefetched{' "$tmp/samples")/$(sum_metric "etld_kafka_partition_prefetched{")" = 3/0
check "fetched messages add up to the messages produced" test "$(sum_metric "etld_kafka_partition_fetched_total{")" = $((n + 2))
check "commits counted, none failed" test "$(metric "etld_kafka_commit_failures_total{${labels}\"in\"}")" = 0 -a \
  "$(metric "etld_kafka_commits_total{${labels}\"in\"}" | cut -d. -f1)" -gt 0
check "the assignment was a rebalance" test "$(metric "etld_kafka_rebalances_total{${labels}\"in\"}" | cut -d. -f1)" -ge 1
check "the source emitted every message" test "$(metric "etld_stage_events_out_total{${labels}\"in\"}")" = $((n + 2))
check "the sink acked every event" test "$(metric "etld_stage_events_acked_total{${labels}\"out\"}")" = $((n + 2))
check "the map rejected both poison records (bad JSON, id * 2 of a string)" test "$(metric "etld_stage_events_dead_lettered_total{${labels}\"parse\"}")" = 2
check "/readyz is 200 with the sink connected" test "$(curl -s -o /dev/null -w '%{http_code}' "$base/readyz")" = 200
kill -TERM "$pid"
set +e; wait "$pid"; rc=$?; set -e
pid=
check "SIGTERM drains and exits 0" test "$rc" = 0

# PostgreSQL not there: never ready, the gauge says why, retries count. A consumer group of its
# own (kafka_map_postgres names it after run_id), so that the records are read again and the sink
# holds them.
run_id+=_down
kafka_map_postgres "$tmp/down.yaml" metrics_e2e dead_letter="$dlq" dsn="postgresql://etld:etld@127.0.0.1:1/etld?connect_timeout=1"
start "$tmp/down.yaml"
for _ in $(seq 1 100); do
  scrape 2>/dev/null && [ "$(metric "etld_postgres_retries_total{${labels}\"out\"}" | cut -d. -f1)" -ge 3 ] && break
  sleep 0.1
done
code=$(curl -s -o "$tmp/ready" -w '%{http_code}' "$base/readyz")
check "/readyz is 503 while PostgreSQL is down" test "$code" = 503
check "... naming the sink that is not connected" grep -q "postgres sink 'out' (instance 0): not connected to PostgreSQL" "$tmp/ready"
check "etld_postgres_connected is 0" test "$(metric "etld_postgres_connected{${labels}\"out\"}")" = 0
check "etld_pipeline_ready is 0" test "$(metric 'etld_pipeline_ready{pipeline="metrics_e2e"}')" = 0
check "connection attempts count as retries" test "$(metric "etld_postgres_retries_total{${labels}\"out\"}" | cut -d. -f1)" -ge 3
check "repeated retry warnings are rate-limited: one line for three or more retries" \
  test "$(grep -c 'PostgreSQL unavailable' "$tmp/run.log")" = 1
# The sink holds the records it cannot write and makes no progress: the watchdog metrics show it
# (wedged only after 60 s without systemd's WatchdogSec, so not yet).
stalled() { scrape && awk -v k="etld_stage_stalled_seconds{${labels}\"out\"}" 'index($0, k) == 1 {exit !($NF >= 2)}' "$tmp/samples"; }
check "etld_stage_stalled_seconds of the sink grows while PostgreSQL is down" wait_for 15 stalled
check "... the map before it, which has nothing to do, is not stalled" \
  test "$(metric "etld_stage_stalled_seconds{${labels}\"parse\"}")" = 0
check "etld_watchdog_wedged_stages is 0 before the 60 s" test "$(metric 'etld_watchdog_wedged_stages{pipeline="metrics_e2e"}')" = 0
kill -TERM "$pid"
set +e; wait "$pid"; set -e
pid=
if [ "$fail" != 0 ]; then echo "--- run log"; tail -30 "$tmp/run.log"; echo "--- samples"; grep -E 'etld_(kafka|postgres)' "$tmp/samples" | grep -v _bucket; fi >&2
finish
