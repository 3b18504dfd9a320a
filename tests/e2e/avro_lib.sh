# shellcheck shell=bash
# Shared by the avro_*_test.sh scripts (sourced, not a test itself), on top of lib.sh: the broker,
# PostgreSQL and the schema registry of scripts/dev-env, a topic of one partition and the names of
# the run, the kafka source stage of their pipelines, and etld started and stopped with checks.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
use_registry

# avro_run PREFIX: a topic of one partition and the run's names: topic, table, dlq, run_id.
avro_run() {
  run_id="${1}_$(date +%s%N | tail -c 9)"
  topic="t_$run_id" table="${1}_$run_id" dlq="${1}_${run_id}_dl"
  "$src/scripts/dev-env" topic "$topic" 1 >/dev/null
}

# avro_source [LINE...]: the source stage `in` reading $topic from the start with format: avro
# and the dev environment's registry; each LINE is added indented under it (write "  timeout: 5s"
# first to set an option of schema_registry).
avro_source() {
  cat <<YAML
  in:
    type: kafka
    brokers: \${KAFKA_BROKERS}
    topics: [$topic]
    group: g_$run_id
    start_from: earliest
    format: avro
    schema_registry:
      url: \${SCHEMA_REGISTRY_URL}
YAML
  local line
  for line in "$@"; do printf '    %s\n' "$line"; done
}

# customers_envelope_avsc: on stdout, the Avro schema of a Debezium change event of a table
# customers (id int, email string, balance decimal(12,2)) with its source.lsn, as Debezium's
# converter writes it.
customers_envelope_avsc() {
  cat <<'JSON'
{"type": "record", "name": "Envelope", "namespace": "etld.test.customers", "fields": [
  {"name": "before", "type": ["null", {"type": "record", "name": "Value", "fields": [
      {"name": "id", "type": "int"},
      {"name": "email", "type": "string"},
      {"name": "balance", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}}]}],
   "default": null},
  {"name": "after", "type": ["null", "Value"], "default": null},
  {"name": "source", "type": {"type": "record", "name": "Source", "fields": [{"name": "lsn", "type": ["null", "long"]}]}},
  {"name": "op", "type": "string"}
]}
JSON
}

# start_etld: checks that $tmp/p.yaml validates and runs etld on it in the background ($pid),
# its log in $tmp/run.log.
start_etld() {
  check "the pipeline validates" "$etld" validate "$tmp/p.yaml"
  "$etld" run "$tmp/p.yaml" 2>"$tmp/run.log" &
  pid=$!
}

# stop_etld: SIGTERM to etld and a check that it drained and exited 0; then, if any check failed,
# etld's log and the dead letters on stderr.
stop_etld() {
  kill -TERM "$pid" 2>/dev/null || true
  local rc=0
  wait "$pid" || rc=$?
  pid=
  check "etld exits 0 on SIGTERM" test "$rc" = 0
  if [ "$fail" != 0 ]; then
    echo "--- etld log"; tail -30 "$tmp/run.log"
    echo "--- dead letters"; psql_q "select \"offset\", error from $dlq order by 1" 2>/dev/null || true
  fi >&2
}
