#!/usr/bin/env bash
# Scale-out with exactly_once through the real binary: two etld processes share a 6-partition
# topic in one consumer group (cooperative-sticky, static membership), a third joins mid-stream,
# one is restarted under its group.instance.id (the others see no rebalance), one is SIGKILLed
# for good and a fourth added. Every record lands exactly once.
source "$(dirname "$0")/exactly_once_lib.sh"

n=60000
topic="t_$run_id" table="eo_$run_id" group="g_$run_id"
"$src/scripts/dev-env" topic "$topic" 6 >/dev/null
for i in a b c d; do eo_pipeline "$tmp/$i.yaml" "$group" "$table" "etld-$i"; done
claimed() { grep -q "kafka: claimed in" "$tmp/$1.${runs_of[$1]}.log"; }
rebalance_lines() { grep -cE "kafka: (assigned|revoking)" "$tmp/$1.${runs_of[$1]}.log" || true; }

start a "$tmp/a.yaml"
start b "$tmp/b.yaml"
check "a claimed its partitions" wait_for 30 claimed a
check "b claimed its partitions" wait_for 30 claimed b
produce_stream "$topic" "$n" 400  # ~4000 records/s: ~15 s
wait_for 20 at_least "$table" 5000 || true
start c "$tmp/c.yaml"
check "c joined mid-stream and claimed partitions" wait_for 30 claimed c
revoked_cooperatively() { grep -qE "kafka: revoking .*\[" "$tmp/a.1.log" "$tmp/b.1.log" && grep -q "(cooperative;" "$tmp/c.1.log"; }
check "a or b gave partitions to c incrementally (cooperative)" wait_for 15 revoked_cooperatively

# Static membership: a restarted under its group.instance.id gets its partitions back at once;
# b and c see no rebalance meanwhile.
sleep 1
before_b=$(rebalance_lines b) before_c=$(rebalance_lines c)
kill9 a
start a "$tmp/a.yaml"
check "a, restarted under the same group.instance.id, claims again" wait_for 30 claimed a
check "b saw no rebalance when a restarted (static membership)" test "$(rebalance_lines b)" = "$before_b"
check "c saw no rebalance when a restarted (static membership)" test "$(rebalance_lines c)" = "$before_c"

wait_for 20 at_least "$table" 30000 || true
kill9 b  # for good: its partitions move once its session times out
start d "$tmp/d.yaml"
check "d joined and claimed partitions" wait_for 40 claimed d
wait "$producer_pid"
check "every record arrived" wait_for 90 at_least "$table" "$n"
check "exactly once across joins, a restart and a kill: count(*) = count(distinct seq) = $n" exactly_once_in "$table" "$n"
check "several owners wrote: epochs moved past 1" test "$(psql_q "select max(epoch) > 1 from offsets_$run_id where consumer_group = '$group'")" = t
for i in a c d; do check "$i exits 0 on SIGTERM" stop "$i"; done
finish
