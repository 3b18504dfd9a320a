#!/usr/bin/env bash
# kafka -> reduce -> postgres through the real binary, SIGKILLed while the aggregates are on their
# way: a reduce holds its inputs' acks until its results are written, so no Kafka offset is
# committed whose record's aggregate is not in PostgreSQL. The sink's table is locked (SHARE mode:
# reads pass, writes wait), so the run reads the whole topic (stop_at_end), emits its results and
# waits on the lock, committing every 100 ms whatever is settled: nothing may be. Killed there,
# the table is empty and the group has no committed offset; a second run then counts every record
# and commits every offset. Before reduce held acks, the first run committed all of them.
source "$(dirname "$0")/lib.sh"
use_services
check_says_ok=1
psql_q() { "$src/scripts/dev-env" psql -tAc "$1" 2>/dev/null; }
run_id="kr_$(date +%s%N | tail -c 9)"
topic="t_$run_id" table="agg_$run_id" group="g_$run_id"
n=20000 keys=7
cleanup() {
  for p in $pid "${bg_pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  psql_q "select pg_terminate_backend(pid) from pg_stat_activity where query like '%lock table $table%' and pid <> pg_backend_pid()" >/dev/null || true
  if [[ $fail != 0 ]]; then
    for f in "$tmp"/*.log; do [[ -e $f ]] && { echo "--- $f (last lines)"; tail -25 "$f"; }; done >&2
  fi
  rm -rf "$tmp"
}

"$src/scripts/dev-env" topic "$topic" 4 >/dev/null
# Record i is {"i": i, "k": i % keys, "v": i}, keyed by k.
python3 -c "
import json
for i in range($n):
    print(f'{i % $keys}\t' + json.dumps({'i': i, 'k': i % $keys, 'v': i}))
" | "$src/scripts/dev-env" produce --keyed "$topic" 2>"$tmp/producer.log"
expected=$(python3 -c "
n, keys = $n, $keys
print(','.join(f'{k}:{len(range(k, n, keys))}:{sum(range(k, n, keys))}' for k in range(keys)))
")
aggregates() { psql_q "select coalesce(string_agg(k || ':' || n || ':' || total, ',' order by k), '') from $table"; }
# The committed offsets of the group, summed (0 when none: a partition's offset is its count).
committed() { "$src/scripts/dev-env" offsets "$group" | awk '{s += $3} END {print s + 0}'; }

psql_q "create table $table (k bigint primary key, n bigint not null, total bigint not null)" >/dev/null
cat >"$tmp/p.yaml" <<YAML
pipeline: kafka-reduce
stages:
  in:
    type: kafka
    brokers: \${KAFKA_BROKERS}
    topics: [$topic]
    group: $group
    stop_at_end: true
    commit_interval: 100ms
  totals:
    type: reduce
    inputs: [in]
    group_by: [k]
    aggregates: { n: count, total: "sum(v)" }
  out:
    type: postgres
    inputs: [totals]
    dsn: \${PG_DSN}
    table: $table
    columns:
      k: { from: k, type: bigint }
      n: { from: n, type: bigint }
      total: { from: total, type: bigint }
YAML
check "kafka (stop_at_end) -> reduce -> postgres validates" "$etld" validate "$tmp/p.yaml"
sed '/stop_at_end/d' "$tmp/p.yaml" >"$tmp/endless.yaml"
set +e
"$etld" validate "$tmp/endless.yaml" 2>"$tmp/endless.err"
endless_rc=$?
set -e
check "without stop_at_end it is refused at the reduce" test "$endless_rc" = 1
check "the refusal gives the numbers and the way out" \
  grep -q "endless.yaml:9:.*stage 'totals' (reduce) holds every input's ack until end of input.*never ends and allows at most 10000 unsettled events.*stop_at_end: true" "$tmp/endless.err"

# Run 1: the sink's writes wait on a lock.
"$src/scripts/dev-env" psql -c "begin; lock table $table in share mode; select pg_sleep(600);" >/dev/null 2>&1 &
bg_pids+=($!)
locked() { [[ $(psql_q "select count(*) from pg_locks l join pg_class c on c.oid = l.relation where c.relname = '$table' and l.mode = 'ShareLock' and l.granted") == 1 ]]; }
check "the table is locked" wait_for 30 locked
"$etld" run "$tmp/p.yaml" 2>"$tmp/run1.log" &
pid=$!
check "run 1 reads every partition to its end" wait_for 120 grep -q "input ends (stop_at_end)" "$tmp/run1.log"
writer_waits() { [[ $(psql_q "select count(*) from pg_stat_activity where wait_event_type = 'Lock' and query ilike '%$table%'") -ge 1 ]]; }
check "run 1's aggregates wait on the lock" wait_for 60 writer_waits
sleep 2  # twenty commit intervals: an offset settled by now would be committed
check "while the aggregates are unwritten, no offset is committed" test "$(committed)" = 0
kill -9 "$pid"
wait "$pid" 2>/dev/null || true
pid=
psql_q "select pg_terminate_backend(pid) from pg_stat_activity where (query like '%lock table $table%' or (wait_event_type = 'Lock' and query ilike '%$table%')) and pid <> pg_backend_pid()" >/dev/null
check "after the SIGKILL the table is empty" test "$(psql_q "select count(*) from $table")" = 0
check "after the SIGKILL no offset is committed" test "$(committed)" = 0

# Run 2: nothing in the way; it ends by itself.
set +e
timeout 120 "$etld" run "$tmp/p.yaml" 2>"$tmp/run2.log"
run2_rc=$?
set -e
check "run 2 ends by itself, exit status 0" test "$run2_rc" = 0
got=$(aggregates)
echo "aggregates: $got" >&2
check "run 2's aggregates count every record produced" test "$got" = "$expected"
check "run 2 committed every offset" test "$(committed)" = "$n"
finish
