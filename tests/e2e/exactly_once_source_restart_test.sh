#!/usr/bin/env bash
# The restart policy restarts a kafka source under exactly_once, through the real binary: while
# records stream into a, a trigger on the offsets table refuses every claim (a new epoch) and a
# second member b joins the group. The members that must claim partitions in the rebalance fail,
# and their restart policy re-creates their source until the trigger lets claims through again.
# A re-created source must still claim in its sink's offsets table: before the binding moved
# into the engine, a restarted source could find no store, commit plain Kafka offsets and have
# its rows dropped by the sink. Every record lands exactly once.
source "$(dirname "$0")/exactly_once_lib.sh"

n=30000
topic="t_$run_id" table="eo_$run_id" group="g_$run_id" offsets="offsets_$run_id"
"$src/scripts/dev-env" topic "$topic" 4 >/dev/null
for name in a b; do
  eo_pipeline "$tmp/$name.yaml" "$group" "$table" "etld-$name"
  # Restarts often enough to outlast the refusal (100 ms doubling: ~25 s in 8 restarts).
  sed -i 's/^    type: kafka$/    type: kafka\n    max_restarts: 20\n    restart_backoff: 100ms/' "$tmp/$name.yaml"
done
claims() { grep -c "kafka: claimed in" "$tmp/$1.1.log" || true; }
restarts() { grep -c "stage failed, restarting in .*claiming partitions" "$tmp/$1.1.log" || true; }
claimed() { (($(claims "$1") >= ${2:-1})); }
source_restarted() { (($(restarts a) + $(restarts b) >= 1)); }

start a "$tmp/a.yaml"
check "a claimed its partitions" wait_for 30 claimed a
produce_stream "$topic" "$n" 300 # ~3000 records/s: ~10 s
check "records flow into the table" wait_for 30 at_least "$table" 3000
# Claims raise a plain (not transient) error while refuse_claims holds a row; the sink's own
# offset updates keep their epoch and pass.
psql_q "create table refuse_$run_id (x int); insert into refuse_$run_id values (1);
  create function refuse_$run_id() returns trigger language plpgsql as \$\$ begin
    if new.epoch <> old.epoch and exists (select 1 from refuse_$run_id) then
      raise exception 'claims refused by the test'; end if;
    return new; end \$\$;
  create trigger refuse before update on $offsets for each row execute function refuse_$run_id();" >/dev/null
a_claims=$(claims a)
start b "$tmp/b.yaml"
check "a claim fails and the restart policy re-creates the kafka source" wait_for 60 source_restarted
psql_q "delete from refuse_$run_id" >/dev/null
check "b's source claims in its sink's offsets table once claims pass again" wait_for 60 claimed b
wait "$producer_pid"
check "every record arrived" wait_for 90 at_least "$table" "$n"
check "exactly once across the source's restarts: count(*) = count(distinct seq) = $n" exactly_once_in "$table" "$n"
echo "claims: a $a_claims then $(claims a), b $(claims b); restarts: a $(restarts a), b $(restarts b)" >&2
check "a exits 0 on SIGTERM" stop a
check "b exits 0 on SIGTERM" stop b
finish
