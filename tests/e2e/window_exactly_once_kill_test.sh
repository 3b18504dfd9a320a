#!/usr/bin/env bash
# The real-time analytics example end to end, through the real binary, broker and PostgreSQL:
# 200,000 out-of-order page views (scripts/pageviews: event times up to 20 s behind, over 10
# minutes of event time) stream into an 8-partition topic while examples/realtime-analytics.yaml
# (kafka -> tumbling 1m window by event time -> postgres mode: merge, exactly_once) reads them;
# it is SIGKILLed at random points mid-stream (mid-window: every minute holds ~20,000 views) and
# restarted, then run as two instances in one group, one SIGKILLed during their rebalance. The
# final table must equal the reference scripts/pageviews computes from the produced records
# with Python's Decimal, sets and counters (not etld's code): per (minute, page) the count, the
# exact sum, the exact distinct customers, the top 3 products, and the HyperLogLog estimate
# within 3 standard errors (for small counts, within the collisions a perfect hash makes with
# probability 1 - 1e-6: scripts/pageviews hll_tolerance); and no record may have gone to the
# dead-letter table.
#
# allowed_lateness is 24h here, far above the 20 s of generated disorder: whether a record is
# late depends on the watermark, which depends on the order etld happens to read the partitions
# in (and an idle partition, or a restart, moves it), while the reference must not depend on
# processing order. With this allowance no record can be late, so every one must be counted.
source "$(dirname "$0")/exactly_once_lib.sh"

n=${ETLD_WINDOW_E2E_RECORDS:-200000} kills=6 rate=5000  # ~40 s of stream
topic="pv_$run_id" table="pvm_$run_id" dl="pvdl_$run_id" group="g_pv_$run_id"
"$src/scripts/dev-env" topic "$topic" 8 >/dev/null

# pipeline INSTANCE: the example with this test's names, the lateness above, and static
# membership with a short session so that a SIGKILLed instance's partitions move on quickly.
pipeline() {
  sed -e "s/topics: \[page_views\]/topics: [$topic]/" \
    -e "s/group: etld-page-views/group: $group\n    librdkafka: { group.instance.id: \"$1\", session.timeout.ms: \"6000\", heartbeat.interval.ms: \"500\" }\n    revoke_timeout: 3s/" \
    -e "s/allowed_lateness: 10m /allowed_lateness: 24h /" \
    -e "s/table: page_views_per_minute/table: $table/" -e "s/offsets_table: etld_offsets/offsets_table: offsets_$run_id/" \
    -e "s/table: page_views_dead_letters/table: $dl/" \
    "$src/examples/realtime-analytics.yaml" >"$tmp/$1.yaml"
  grep -q "topics: \[$topic\]" "$tmp/$1.yaml" && grep -q "allowed_lateness: 24h" "$tmp/$1.yaml" &&
    grep -q "table: $table" "$tmp/$1.yaml" && grep -q "table: $dl" "$tmp/$1.yaml" && grep -q "group.instance.id" "$tmp/$1.yaml"
}
check "the example adapts to this test's names" pipeline a
pipeline b
check "the adapted example validates" "$etld" validate "$tmp/a.yaml"

views_in_table() { psql_q "select coalesce(sum(views), 0) from $table" || echo 0; }
committed() { psql_q "select coalesce(sum(next_offset), 0) from offsets_$run_id where consumer_group = '$group'" || echo 0; }
all_committed() { [[ $(committed) == "$n" ]]; }
logs_say() { grep -qE "$2" "$tmp/$1.${runs_of[$1]}.log"; }

"$src/scripts/pageviews" generate "$n" "$tmp/records.jsonl" --rate "$rate" 2>"$tmp/generator.log" |
  "$src/scripts/dev-env" produce --keyed "$topic" 2>"$tmp/producer.log" &
producer_pid=$!
bg_pids+=("$producer_pid")

for k in $(seq 1 "$kills"); do
  start a "$tmp/a.yaml"
  # Some kills soon after start (joining, claiming, the first partials), most mid-stream.
  sleep "$(python3 -c "import random; print(random.choice([0.5, 2]) + random.random() * 4)")"
  kill9 a
  echo "kill $k: $(views_in_table) views merged, $(committed) offsets committed" >&2
done

# Two instances in one group; a is SIGKILLed at the first sign of the rebalance b's join causes
# (a revoking partitions, or b being assigned some), its partials and offsets possibly in flight.
start a "$tmp/a.yaml"
check "a claimed its partitions" wait_for 30 logs_say a "kafka: claimed in"
start b "$tmp/b.yaml"
rebalancing() { logs_say a "kafka: revoking" || logs_say b "kafka: assigned"; }
deadline=$(($(date +%s) + 30))
until rebalancing || (($(date +%s) >= deadline)); do sleep 0.02; done
check "b's join started a rebalance" rebalancing
kill9 a
echo "killed a during the rebalance: $(views_in_table) views merged, $(committed) offsets committed" >&2
check "b claimed partitions" wait_for 40 logs_say b "kafka: claimed in"
start a "$tmp/a.yaml"  # and a comes back: the two share the rest of the stream

wait "$producer_pid"
check "the producer sent all $n records" test "$(wc -l <"$tmp/records.jsonl")" = "$n"
check "every record's offset was committed with its partial" wait_for 180 all_committed
check "the table counts every view once: sum(views) = $n" test "$(views_in_table)" = "$n"

"$src/scripts/pageviews" dump "$table" >"$tmp/table.csv"
check "the table equals the reference computed from the produced records" \
  "$src/scripts/pageviews" check "$tmp/records.jsonl" "$tmp/table.csv"
"$src/scripts/pageviews" check "$tmp/records.jsonl" "$tmp/table.csv" | tail -n 20 >&2 || true
dead_letters() { if [[ $(psql_q "select to_regclass('$dl') is not null") == t ]]; then psql_q "select count(*) from $dl"; else echo 0; fi; }
check "no record went to the dead-letter table" test "$(dead_letters)" = 0
check "no record was late" bash -c "! grep -l 'late:' '$tmp'/*.log"
check "several owners wrote: epochs moved past 1" test "$(psql_q "select max(epoch) > 1 from offsets_$run_id where consumer_group = '$group'")" = t
check "a exits 0 on SIGTERM" stop a
check "b exits 0 on SIGTERM" stop b
finish
