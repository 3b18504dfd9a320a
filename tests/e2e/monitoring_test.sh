#!/usr/bin/env bash
# The shipped Grafana dashboard (packaging/grafana/etld.json) and Prometheus alert rules
# (packaging/prometheus/etld-alerts.yml) against a live etld: a kafka -> map -> postgres pipeline
# moves records (and a poison one, so dead letters count) while /metrics is scraped; every
# metric name a dashboard panel, a dashboard variable or an alert rule uses must be a sample of
# that scrape, and the dashboard's JSON must be well-formed (tests/support/monitoring_check.py).
# Then a real Prometheus scrapes it with the rules loaded: the dashboard's queries must answer with
# the pipeline's series, the rules must evaluate, and a failed reload must raise its alert. Last,
# promtool parses the rules and the dashboard's PromQL and runs the rules' unit tests
# (etld-alerts.test.yml). prometheus and promtool come with Debian's prometheus package; without
# them the test says why and is skipped (exit 77) after the checks it could run: it never passes
# without them.
source "$(dirname "$0")/lib.sh"
use_services

dashboard="$src/packaging/grafana/etld.json"
rules="$src/packaging/prometheus/etld-alerts.yml"
rule_tests="$src/packaging/prometheus/etld-alerts.test.yml"
n=300
run_id="mon_$(date +%s%N | tail -c 9)"
topic="t_$run_id" table="rows_$run_id" dlq="dead_$run_id"
"$src/scripts/dev-env" topic "$topic" 2 >/dev/null
{
  for i in $(seq 1 "$n"); do printf '%s\t{"id": %s}\n' "$i" "$i"; done
  printf 'poison\t{"id": "not a number"}\n'
} | "$src/scripts/dev-env" produce --keyed "$topic"

kafka_map_postgres "$tmp/p.yaml" monitoring_e2e max_rows=100 dead_letter="$dlq"
start_etld "$tmp/p.yaml"
base="http://$admin"
# The scrape to check against: once every record is in and the consumer lag of both partitions
# (from librdkafka's statistics) is there.
scraped() {
  curl -sf "$base/metrics" >"$tmp/scrape" && python3 "$promcheck" <"$tmp/scrape" >"$tmp/samples" &&
    [ "$(rows)" = "$n" ] && [ "$(grep -c '^etld_kafka_consumer_lag{' "$tmp/samples")" = 2 ] &&
    grep -q '^etld_postgres_dead_letters_total{.*} 1$' "$tmp/samples"
}
check "the pipeline wrote every record, dead-lettered the poison one and exported its lag" wait_for 60 scraped

python3 "$src/tests/support/monitoring_check.py" "$tmp/scrape" "$dashboard" "$rules" "$tmp/dashboard-rules.json" \
  >"$tmp/names" 2>"$tmp/problems" || true
cat "$tmp/problems" >&2
check "the dashboard is well-formed and every metric it and the rules use is in the scrape" test ! -s "$tmp/problems"
names=$(wc -l <"$tmp/names")
echo "the dashboard and the rules use $names metric names" >&2
# Guards the check itself: it must have seen the families each part of the dashboard and the
# rules is about (throughput, lag, batches, dead letters, restarts, reloads, schema changes, the
# watchdog).
for name in etld_postgres_rows_written_total etld_stage_events_in_total etld_stage_events_out_total \
  etld_kafka_consumer_lag etld_postgres_batch_seconds_bucket etld_postgres_batch_rows_sum \
  etld_postgres_dead_letters_total etld_postgres_retries_total etld_stage_restarts_total \
  etld_last_reload_success etld_config_generation etld_postgres_connected etld_postgres_schema_changes_total \
  etld_stage_stalled_seconds etld_watchdog_wedged_stages; do
  check "$name is used" grep -qx "$name" "$tmp/names"
done

# A real Prometheus (Debian's prometheus package) scrapes the running etld every second with the
# rules loaded: every dashboard query must answer with the pipeline's series, every rule must
# evaluate without error, and a failed reload must raise EtldReloadFailed (pending: its `for`).
missing=
command -v prometheus >/dev/null || missing+=" prometheus"
command -v promtool >/dev/null || missing+=" promtool"
prom_query() {  # $1 PromQL: the number of series it returns
  curl -sf -G "$prom/api/v1/query" --data-urlencode "query=$1" |
    python3 -c 'import json, sys; print(len(json.load(sys.stdin)["data"]["result"]))'
}
if command -v prometheus >/dev/null; then
  prom_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  prom="http://127.0.0.1:$prom_port"
  cat >"$tmp/prometheus.yml" <<YAML
global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files: ["$rules"]
scrape_configs:
  - job_name: etld
    static_configs: [{ targets: ["${base#http://}"] }]
YAML
  prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/prom-data" \
    --web.listen-address="127.0.0.1:$prom_port" >"$tmp/prometheus.log" 2>&1 &
  prom_pid=$!
  bg_pids+=("$prom_pid")
  # Three scrapes at least, so that rate() has samples to work with.
  scraped_thrice() { [ "$(prom_query 'count_over_time(etld_pipeline_ready{job="etld"}[1m]) >= 3' 2>/dev/null)" = 1 ]; }
  check "Prometheus scrapes etld" wait_for 60 scraped_thrice || cat "$tmp/prometheus.log" >&2
  python3 "$src/tests/support/dashboard_queries.py" "$prom" "$tmp/dashboard-rules.json" >"$tmp/queries" || true
  grep FAIL "$tmp/queries" >&2 || true
  check "every dashboard query answers with the pipeline's series" \
    test "$(grep -c FAIL "$tmp/queries")/$(wc -l <"$tmp/queries")" = "0/$(grep -c '"record"' "$tmp/dashboard-rules.json")"
  alerts=$(grep -c '^ *- alert:' "$rules")
  curl -sf "$prom/api/v1/rules" | python3 -c '
import json, sys
rules = [r for g in json.load(sys.stdin)["data"]["groups"] for r in g["rules"]]
bad = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
print(len(rules), "rules evaluated,", bad or "all healthy", file=sys.stderr)
sys.exit(1 if bad or len(rules) != int(sys.argv[1]) else 0)' "$alerts" && rules_ok=1 || rules_ok=0
  check "Prometheus evaluates all $alerts alert rules without error" test "$rules_ok" = 1
  check "a healthy pipeline raises none of the connection, readiness and reload alerts" test \
    "$(prom_query 'ALERTS{alertname=~"EtldPostgresDisconnected|EtldPipelineNotReady|EtldReloadFailed"}')" = 0
  echo 'stages: [' >"$tmp/p.yaml"
  kill -HUP "$pid"
  reload_alert() { [ "$(prom_query 'ALERTS{alertname="EtldReloadFailed",alertstate="pending",pipeline="monitoring_e2e",job="etld"}')" = 1 ]; }
  check "a failed reload raises EtldReloadFailed" wait_for 30 reload_alert
  kill -TERM "$prom_pid" && wait "$prom_pid" || true
fi
kill -TERM "$pid"
set +e; wait "$pid"; rc=$?; set -e
pid=
check "SIGTERM drains and exits 0" test "$rc" = 0

if [ -n "$missing" ]; then
  finish >&2 || exit 1
  echo "SKIP: not installed:$missing (Debian's prometheus package, which scripts/install-deps installs, has both): the rules and the dashboard's PromQL were not run on Prometheus, not parsed by promtool, and the rules' unit tests did not run" >&2
  exit 77
fi
check "promtool check rules accepts the alert rules" promtool check rules "$rules"
check "promtool parses every PromQL expression of the dashboard" promtool check rules "$tmp/dashboard-rules.json"
# promtool test rules reads the rule_files relative to the test file.
check "the alert rules' unit tests pass (promtool test rules)" promtool test rules "$rule_tests"
finish
