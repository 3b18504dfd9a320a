#!/usr/bin/env bash
# Static membership by default through the real binary and broker: a SIGKILLed etld restarted
# gets its partitions back well under librdkafka's 45 s session timeout (a dynamic member waits
# for it), without any group.instance.id in the file; a second etld of the same pipeline on this
# host gets an id of its own instead of fencing the first.
source "$(dirname "$0")/lib.sh"
use_services
rows_at_least() { (($(rows) >= $1)); }

run_id="sm_$(date +%s%N | tail -c 9)"
topic="t_$run_id" table="sm_$run_id"
"$src/scripts/dev-env" topic "$topic" 4 >/dev/null
cat >"$tmp/p.yaml" <<YAML
pipeline: sm_$run_id
stages:
  in:
    type: kafka
    brokers: \${KAFKA_BROKERS}
    topics: [$topic]
    group: g_$run_id
  out:
    type: postgres
    inputs: [in]
    dsn: \${PG_DSN}
    table: $table
    create_table: true
    columns: { id: { from: id, type: bigint } }
YAML
assigned() { grep -q "kafka: assigned .*$topic\[0,1,2,3\]" "$1"; }

"$etld" run "$tmp/p.yaml" 2>"$tmp/run1.log" &
pid=$!
check "the first run gets all 4 partitions" wait_for 60 assigned "$tmp/run1.log"
check "it joined with the default group.instance.id" \
  grep -q "group.instance.id sm_$run_id.in.0.$(hostname | tr -c 'a-zA-Z0-9._\n-' '_')" "$tmp/run1.log"
seq 1 100 | sed 's/.*/{"id": &}/' | "$src/scripts/dev-env" produce "$topic"
check "records flow" wait_for 30 rows_at_least 100

kill -9 "$pid"
wait "$pid" 2>/dev/null || true
pid=
start=$(date +%s)
"$etld" run "$tmp/p.yaml" 2>"$tmp/run2.log" &
pid=$!
check "the restarted etld gets its partitions back" wait_for 40 assigned "$tmp/run2.log"
took=$(($(date +%s) - start))
echo "partitions back after $took s" >&2
check "well under the 45 s session timeout (< 15 s): static membership" test "$took" -lt 15
seq 101 150 | sed 's/.*/{"id": &}/' | "$src/scripts/dev-env" produce "$topic"
check "records flow after the restart" wait_for 30 rows_at_least 150
# A second process of the same pipeline: another id, and no one is fenced.
"$etld" run "$tmp/p.yaml" 2>"$tmp/second.log" &
second=$!
bg_pids+=("$second")
joined_second() { grep -q "group.instance.id sm_$run_id.in.0.*\.s1" "$tmp/second.log"; }
check "a second etld on this host takes the id's next slot (.s1)" wait_for 30 joined_second
check "... and gets partitions of its own" wait_for 60 grep -q "kafka: assigned .*$topic\[" "$tmp/second.log"
kill -TERM "$second"
rc=0; wait "$second" || rc=$?
check "the second etld stops cleanly" test "$rc" = 0
check "nobody was fenced" bash -c "! grep -qi fenced '$tmp/run2.log' '$tmp/second.log'"

kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
pid=
check "SIGTERM exits 0" test "$rc" = 0
finish
