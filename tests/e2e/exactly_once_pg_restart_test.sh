#!/usr/bin/env bash
# PostgreSQL restarted under exactly_once, through the real binary: while records stream and
# etld commits a transaction every few milliseconds, the server is stopped (fast: open
# transactions are aborted, a COMMIT in flight may or may not have landed) and started again,
# twice. etld retries; every record lands exactly once.
source "$(dirname "$0")/exactly_once_lib.sh"

n=40000
topic="t_$run_id" table="eo_$run_id" group="g_$run_id"
"$src/scripts/dev-env" topic "$topic" 4 >/dev/null
eo_pipeline "$tmp/p.yaml" "$group" "$table" "etld-pg"
# Small batches: a transaction is nearly always open when the server goes down.
sed -i 's/batch: { max_rows: 1000, max_wait: 20ms }/batch: { max_rows: 200, max_wait: 5ms }\n    retry: { initial_backoff: 50ms, max_backoff: 500ms }/' "$tmp/p.yaml"
claimed() { grep -q "kafka: claimed in" "$tmp/p.1.log"; }

start p "$tmp/p.yaml"
check "etld claimed its partitions" wait_for 30 claimed
produce_stream "$topic" "$n" 300  # ~3000 records/s: ~13 s
restart_pg_on_exit=1
for round in 1 2; do
  wait_for 30 at_least "$table" $((round * 12000)) || true
  "$src/scripts/dev-env" pg-stop >/dev/null 2>&1
  sleep 1
  "$src/scripts/dev-env" pg-start >/dev/null 2>&1
  echo "restart $round done: $(distinct_seqs "$table") records" >&2
done
wait "$producer_pid"
check "every record arrived" wait_for 90 at_least "$table" "$n"
check "exactly once across two PostgreSQL restarts: count(*) = count(distinct seq) = $n" exactly_once_in "$table" "$n"
retried() { grep -q "failed transiently" "$tmp/p.1.log"; }
check "etld saw the outage and retried" retried
check "etld exits 0 on SIGTERM" stop p
finish
