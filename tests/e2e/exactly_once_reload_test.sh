#!/usr/bin/env bash
# Reload under delivery: exactly_once, through the real binary against the real broker and
# PostgreSQL: while 30,000 records stream in, SIGHUP applies a changed kafka source option (the
# source is rebuilt and must claim its partitions through the running sink's offset store), then a
# changed sink option (the sink is rebuilt with a new store, so its source is rebuilt with it and
# claims again). Before the fix, validating the new file unregistered the running sink's store:
# the new source committed plain Kafka offsets and the sink dropped every row from then on.
source "$(dirname "$0")/exactly_once_lib.sh"

n=30000
topic="t_$run_id" table="eo_$run_id" group="g_$run_id"
"$src/scripts/dev-env" topic "$topic" 2 >/dev/null
eo_pipeline "$tmp/eo.yaml" "$group" "$table" "reload-1"
check "the pipeline validates" "$etld" validate "$tmp/eo.yaml"

produce_stream "$topic" "$n" 300  # ~3000 records/s: the stream lasts ~10 s
start eo "$tmp/eo.yaml"
log="$tmp/eo.1.log"
wait_log() { wait_for 30 grep -q -- "$1" "$log"; }
check "the partitions were claimed in PostgreSQL" wait_log "claimed in PostgreSQL table offsets_$run_id"
check "rows arrive before the first reload" wait_for 30 at_least "$table" 1000

# A source option only: the source is rebuilt, the sink keeps running.
sed -i 's/max_in_flight_per_partition: 2000/max_in_flight_per_partition: 2000\n    commit_interval: 700ms/' "$tmp/eo.yaml"
kill -HUP "${pid_of[eo]}"
check "the changed source option was applied" wait_log 'reload: generation 2 .*restarted: in$'
before=$(distinct_seqs "$table")
check "rows keep arriving after the source was rebuilt" wait_for 30 at_least "$table" $((before + 3000))

# A sink option only: the sink is rebuilt with a new offset store, and its source with it.
sed -i 's/max_wait: 20ms/max_wait: 30ms/' "$tmp/eo.yaml"
kill -HUP "${pid_of[eo]}"
check "the changed sink option rebuilt the source bound to it too" wait_log 'reload: generation 3 .*restarted: in, out$'
check "every record arrived" wait_for 120 at_least "$table" "$n"
check "exactly_once: count(*) = count(distinct seq) = $n across two reloads" exactly_once_in "$table" "$n"
check "the offsets table matches the rows" test "$(psql_q "select sum(next_offset) from offsets_$run_id where consumer_group = '$group'")" = "$n"
check "the partitions were claimed again after each reload" test "$(grep -c "claimed in PostgreSQL table offsets_$run_id" "$log")" -ge 3
check "no row was dropped as not ours" bash -c "! grep -q 'no longer owns' '$log'"
check "the run exits 0 on SIGTERM" stop eo
finish
