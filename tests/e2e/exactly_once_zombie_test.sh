#!/usr/bin/env bash
# Fencing through the real binary: of two etld processes in one group with exactly_once, one is
# frozen with SIGSTOP past its session timeout while records stream, holding a batch it has not
# committed; the other takes its partitions over (claiming them: new epochs). Resumed with
# SIGCONT, the zombie tries to commit its stale batch: the transaction is fenced (logged) and
# rolled back, and every record lands exactly once.
source "$(dirname "$0")/exactly_once_lib.sh"

n=40000
topic="t_$run_id" table="eo_$run_id" group="g_$run_id"
"$src/scripts/dev-env" topic "$topic" 4 >/dev/null
eo_pipeline "$tmp/live.yaml" "$group" "$table" "etld-live"
# The zombie-to-be commits once a second at most, so it nearly always holds an uncommitted batch.
eo_pipeline "$tmp/zombie.yaml" "$group" "$table" "etld-zombie"
sed -i -e 's/batch: { max_rows: 1000, max_wait: 20ms }/batch: { max_rows: 100000, max_wait: 1s }/' \
  -e 's/max_demand: 2000/max_demand: 20000/' -e 's/max_in_flight_per_partition: 2000/max_in_flight_per_partition: 20000/' \
  "$tmp/zombie.yaml"
claimed() { grep -q "kafka: claimed in" "$tmp/$1.${runs_of[$1]}.log"; }
claims() { grep -c "kafka: claimed in" "$tmp/$1.${runs_of[$1]}.log" || true; }

start live "$tmp/live.yaml"
start zombie "$tmp/zombie.yaml"
check "both instances claimed partitions" wait_for 30 claimed live
wait_for 30 claimed zombie
produce_stream "$topic" "$n" 400  # ~4000 records/s: ~10 s
wait_for 20 at_least "$table" 4000 || true
# Freeze the zombie in the middle of its second-long batch.
sleep 0.5
live_claims=$(claims live)
kill -STOP "${pid_of[zombie]}"
took_over() { [[ $(claims live) -gt $live_claims ]]; }
check "the live instance claimed the frozen one's partitions after its session timed out" wait_for 30 took_over
kill -CONT "${pid_of[zombie]}"
fenced() { grep -q "fenced: .* was claimed by another instance" "$tmp/zombie.1.log"; }
check "the zombie's stale batch was fenced, and it said so" wait_for 20 fenced
wait "$producer_pid"
check "every record arrived" wait_for 60 at_least "$table" "$n"
check "exactly once despite the zombie: count(*) = count(distinct seq) = $n" exactly_once_in "$table" "$n"
check "the zombie exits 0 on SIGTERM" stop zombie
check "the live instance exits 0 on SIGTERM" stop live
finish
