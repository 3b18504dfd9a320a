#!/usr/bin/env bash
# SIGHUP reloads of the main job through the real binary, against the real broker and
# PostgreSQL: a changed sink option and then a changed transform are applied to the running
# pipeline while records stream in. The unchanged Kafka source keeps its consumer: no second
# assignment, no revocation (no rebalance), and every record lands exactly once (plain inserts,
# so a record read twice would show as a duplicate row).
source "$(dirname "$0")/lib.sh"
use_services
wait_rows() {  # at least N rows, within 60 s
  for _ in $(seq 1 600); do
    [[ $(rows) -ge $1 ]] && return 0
    sleep 0.1
  done
  echo "only $(rows) of $1 rows" >&2
  return 1
}
wait_log() {
  for _ in $(seq 1 300); do
    grep -q -- "$1" "$tmp/etld.log" && return 0
    sleep 0.05
  done
  echo "no '$1' in the log" >&2
  return 1
}
produce() {  # first, last
  python3 - "$1" "$2" <<'PY' | "$src/scripts/dev-env" produce --keyed "$topic"
import json, sys
for i in range(int(sys.argv[1]), int(sys.argv[2]) + 1):
    print(f"{i}\t" + json.dumps({"id": i, "amount": i / 100}))
PY
}

n=10000
run_id="reload_$(date +%s%N | tail -c 9)"
topic="t_$run_id" table="orders_$run_id"
"$src/scripts/dev-env" topic "$topic" 4 >/dev/null
produce 1 "$n"

write_pipeline() {  # max_rows, cents expression
  cat >"$tmp/p.yaml" <<YAML
pipeline: reload-e2e
stages:
  in:
    type: kafka
    brokers: \${KAFKA_BROKERS}
    topics: [$topic]
    group: g_$run_id
    start_from: earliest
  parse:
    type: map
    inputs: [in]
    set: { cents: "$2" }
  out:
    type: postgres
    inputs: [parse]
    dsn: \${PG_DSN}
    table: $table
    create_table: true
    max_demand: 500
    batch: { max_rows: $1, max_wait: 20ms }
    columns:
      id: { from: id, type: bigint, required: true }
      cents: { from: cents, type: bigint }
YAML
}
write_pipeline 200 "round(amount * 100)"
"$etld" run "$tmp/p.yaml" 2>"$tmp/etld.log" &
pid=$!
wait_rows 1000
assigned=$(grep -c 'kafka: assigned' "$tmp/etld.log" || true)
check "the source was assigned its partitions once ($assigned)" test "$assigned" -ge 1

write_pipeline 300 "round(amount * 100)"
kill -HUP "$pid"
wait_log 'reload: generation 2'
check "a changed sink option restarts the sink alone" grep -q 'reload: generation 2 (config [0-9a-f]*) running; restarted: out$' "$tmp/etld.log"

write_pipeline 300 "round(amount * 1000)"
kill -HUP "$pid"
wait_log 'reload: generation 3'
check "a changed transform restarts the transform alone" grep -q 'reload: generation 3 (config [0-9a-f]*) running; restarted: parse$' "$tmp/etld.log"

produce $((n + 1)) $((2 * n))
wait_rows $((2 * n))
sleep 0.5  # a record read twice would add a row now
kill -TERM "$pid"
set +e; wait "$pid"; rc=$?; set -e
pid=
check "SIGTERM drains and exits 0 (got $rc)" test "$rc" = 0
check "every record landed exactly once" \
  test "$(psql_q "select count(*) || '/' || count(distinct id) || '/' || min(id) || '/' || max(id) from $table")" = "$((2 * n))/$((2 * n))/1/$((2 * n))"
check "the new expression applied from the reload on, to the later records at least" \
  test "$(psql_q "select count(*) from $table where id > $n and cents = id * 10")" = "$n"
check "no rebalance: no further assignment" test "$(grep -c 'kafka: assigned' "$tmp/etld.log")" = "$assigned"
check "no rebalance: nothing revoked" bash -c "! grep -q 'kafka: revok' '$tmp/etld.log'"
if [ "$fail" != 0 ]; then tail -40 "$tmp/etld.log"; fi >&2
finish
