# shellcheck shell=bash disable=SC2154  # sourced by scripts/demo --analytics: say, build, n
# The real-time analytics demo, on the services scripts/demo started: N page views with event
# times over the last 10 minutes, out of order by up to 20 s, produced while
# examples/realtime-analytics.yaml runs; then the per-minute table, and its check against the
# exact result scripts/pageviews computes from the same records.

say "reset the analytics demo's topic, table and consumer group"
scripts/dev-env psql -qc "drop table if exists page_views_per_minute, page_views_dead_letters" >/dev/null
topic="page_views_$(date +%s)"
group="etld-$topic"
scripts/dev-env topic "$topic" 8 >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed "s/topics: \[page_views\]/topics: [$topic]/; s/group: etld-page-views/group: $group/" \
  examples/realtime-analytics.yaml >"$work/pipeline.yaml"

say "etld validate, graph, then run"
"$build/etld" validate "$work/pipeline.yaml"
"$build/etld" graph "$work/pipeline.yaml"
"$build/etld" run "$work/pipeline.yaml" &
pid=$!

say "produce $n page views to '$topic' (8 partitions, keyed by customer, event times out of order)"
start=$(date -u -d '-10 min' +%Y-%m-%dT%H:%M:%SZ)
scripts/pageviews generate "$n" "$work/records.jsonl" --start "$start" --rate 20000 |
  scripts/dev-env produce --keyed "$topic"
committed() {
  scripts/dev-env psql -tAc "select coalesce(sum(next_offset), 0) from etld_offsets where consumer_group = '$group'" \
    2>/dev/null || echo 0
}
for _ in $(seq 1 180); do
  done_n=$(committed)
  echo "page views aggregated and committed: ${done_n:-0} of $n" >&2
  [[ "${done_n:-0}" -ge "$n" ]] && break
  sleep 1
done
kill -TERM "$pid"
wait "$pid"

say "page_views_per_minute: the busiest pages of each minute"
scripts/dev-env psql -c "select window_start, page, views, revenue, customers, approx_customers,
  (select string_agg(e->>'value' || ' (' || (e->>'count') || ')', ', ') from jsonb_array_elements(top_products::jsonb) e)
    as top_products
  from (select *, rank() over (partition by window_start order by views desc) as r from page_views_per_minute) t
  where r <= 3 order by window_start, views desc"
scripts/dev-env psql -c "select count(*) as rows, sum(views) as views, sum(revenue) as revenue
  from page_views_per_minute"

say "check against the exact result computed from the produced records (scripts/pageviews)"
scripts/pageviews dump page_views_per_minute >"$work/table.csv"
scripts/pageviews check "$work/records.jsonl" "$work/table.csv"
echo "Services keep running: 'scripts/dev-env psql' to look around, 'scripts/dev-env down' to stop them." >&2
