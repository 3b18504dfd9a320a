#!/usr/bin/env bash
# The postgres sink's dead-letter guard through the real binary, broker and PostgreSQL: 150 bad
# records of 200 trip it. pause (the default) holds the partition and keeps running, a restart
# too (no crash loop); stop exits 1 and a restart stops again; the documented way out
# (docs/operations.md: one run with on_dead_letter_ratio: alert) dead-letters them, after which
# stop runs on and new records flow.
source "$(dirname "$0")/lib.sh"
use_services

run_id="guard_$(date +%s%N | tail -c 9)"
topic="t_$run_id" table="g_$run_id" dlq="g_${run_id}_dl"
"$src/scripts/dev-env" topic "$topic" 1 >/dev/null
python3 - <<'PY' | "$src/scripts/dev-env" produce "$topic"
import json
for i in range(200):  # qty 100000 does not fit smallint: 150 bad, 50 good
    print(json.dumps({"id": i, "qty": 1 if i % 4 == 0 else 100000}))
PY

pipeline() {  # pipeline FILE ACTION
  cat >"$1" <<YAML
pipeline: guard_e2e
stages:
  in:
    type: kafka
    brokers: \${KAFKA_BROKERS}
    topics: [$topic]
    group: g_$run_id
    commit_interval: 200ms
  out:
    type: postgres
    inputs: [in]
    dsn: \${PG_DSN}
    table: $table
    create_table: true
    mode: upsert
    key: [id]
    batch: { max_rows: 1000, max_wait: 1s }
    columns:
      id: { from: id, type: bigint, required: true }
      qty: { from: qty, type: smallint }
    dead_letter: { table: $dlq }
${2:+    on_dead_letter_ratio: $2}
YAML
}
dead() { psql_q "select count(*) from $dlq" 2>/dev/null || echo 0; }
rows_are() { test "$(rows)" = "$1"; }
dead_are() { test "$(dead)" = "$1"; }
alive() { kill -0 "$pid" 2>/dev/null; }
stop_etld() {  # SIGTERM, wait, and check exit 0
  kill -TERM "$pid"
  local rc=0; wait "$pid" || rc=$?
  pid=
  check "$1: SIGTERM drains and exits 0" test "$rc" = 0
}
# run_until_exit LOG SECONDS: runs etld and waits up to SECONDS for it to exit; sets outcome to
# its exit status, or to "running" (then $pid still runs).
outcome=
run_until_exit() {
  "$etld" run "$tmp/p.yaml" 2>"$1" &
  pid=$!
  local deadline=$(($(date +%s) + $2))
  while alive && (($(date +%s) < deadline)); do sleep 0.2; done
  if alive; then outcome=running; return; fi
  outcome=0; wait "$pid" || outcome=$?
  pid=
}

# 1. pause, the default.
pipeline "$tmp/p.yaml" ""
"$etld" run "$tmp/p.yaml" --admin-address 127.0.0.1:0 2>"$tmp/pause1.log" &
pid=$!
port=$(admin_port "$tmp/pause1.log")
tripped() { grep -q "more than max_dead_letter_ratio 0.5.*on_dead_letter_ratio: pause" "$tmp/pause1.log"; }
check "pause: the guard trips and says so" wait_for 30 tripped
check "pause: the good records are written" wait_for 10 rows_are 50
check "pause: the partition is held at the first bad record (offset 1)" \
  grep -q "kafka: the event at $topic\[0\] offset 1 failed" "$tmp/pause1.log"
sleep 1
curl -s "http://127.0.0.1:$port/metrics" | python3 "$promcheck" >"$tmp/samples"
check "pause: etld_kafka_partition_held is 1" \
  test "$(metric "etld_kafka_partition_held{instance=\"0\",partition=\"0\",pipeline=\"guard_e2e\",stage=\"in\",topic=\"$topic\"}")" = 1
check "pause: the guard's trips are counted" \
  test "$(metric 'etld_postgres_dead_letter_guard_trips_total{instance="0",pipeline="guard_e2e",stage="out"}')" = 1
check "pause: nothing dead-lettered" test "$(dead)" = 0
check "pause: etld keeps running" alive
stop_etld "pause"

run_until_exit "$tmp/pause2.log" 8
check "pause, restarted: still running after 8 s (no crash loop)" test "$outcome" = running
check "pause, restarted: the held records came again and were held again" \
  grep -q "on_dead_letter_ratio: pause" "$tmp/pause2.log"
stop_etld "pause, restarted"
check "pause: still nothing dead-lettered, nothing lost" test "$(dead)/$(rows)" = "0/50"

# 2. stop: exit 1, and a restart meets the same records and stops again.
pipeline "$tmp/p.yaml" stop
run_until_exit "$tmp/stop1.log" 30
check "stop: etld exits 1" test "$outcome" = 1
check "stop: saying why" grep -q "max_dead_letter_ratio.*on_dead_letter_ratio: stop" "$tmp/stop1.log"
run_until_exit "$tmp/stop2.log" 30
check "stop, restarted: stops again on the same records" test "$outcome" = 1

# 3. The way out for data that is really bad: one run with alert.
pipeline "$tmp/p.yaml" alert
"$etld" run "$tmp/p.yaml" 2>"$tmp/alert.log" &
pid=$!
check "alert: the 150 bad records are dead-lettered" wait_for 30 dead_are 150
check "alert: ... with their reason and coordinates" test "$(psql_q "select count(*) from $dlq where topic = '$topic' and \"partition\" = 0 and \"offset\" % 4 <> 0 and error like '%out of range%'")" = 150
check "alert: the guard logged an error all the same" grep -q "on_dead_letter_ratio: alert" "$tmp/alert.log"
sleep 1  # a commit interval
stop_etld "alert"

pipeline "$tmp/p.yaml" stop
"$etld" run "$tmp/p.yaml" 2>"$tmp/after.log" &
pid=$!
printf '{"id": 1000, "qty": 5}\n{"id": 1001, "qty": 6}\n' | "$src/scripts/dev-env" produce "$topic"
check "after the way out: stop runs on and new records flow" wait_for 30 rows_are 52
check "after the way out: etld is still running" alive
check "after the way out: no record was dead-lettered twice" test "$(dead)" = 150
stop_etld "after the way out"

finish
