# shellcheck shell=bash disable=SC2034,SC2154  # the sourcing tests use etld, promcheck..., and set table
# Shared by the tests/e2e/*_test.sh scripts (sourced, not a test itself: ctest runs *_test.sh
# only): strict mode, the real binary and source tree from ctest's environment, a scratch
# directory removed on exit, checks that count passes and failures, and polling with deadlines.
set -euo pipefail
src=${ETLD_SOURCE_DIR:?}
etld=${ETLD_BINARY:?}
tmp=$(mktemp -d)
# A test keeps the etld it runs in $pid (cleared once waited for) and other background processes
# in bg_pids: whatever is still there is SIGKILLed on exit, so a failed test leaves nothing behind.
# A test with more to undo defines its own cleanup() after sourcing this file.
pid=
bg_pids=()
cleanup() {
  local p
  for p in $pid "${bg_pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

# check NAME CMD...: runs CMD and counts it passed or failed (saying "FAIL: NAME" on stderr, and
# "ok: NAME" too when check_says_ok is set); the test goes on either way and ends with finish.
pass=0 fail=0
check_says_ok=
check() {
  local name=$1; shift
  if "$@"; then pass=$((pass + 1)); [[ -z $check_says_ok ]] || echo "ok: $name" >&2; else echo "FAIL: $name" >&2; fail=$((fail + 1)); fi
}
# finish: the tally, and the test's exit status (non-zero if any check failed).
finish() {
  echo "$pass passed, $fail failed"
  [[ $fail == 0 ]]
}

# wait_for SECONDS CMD...: polls CMD every 0.2 s until it succeeds or the deadline passes.
wait_for() {
  local deadline=$(($(date +%s) + $1)); shift
  until "$@"; do
    (($(date +%s) >= deadline)) && return 1
    sleep 0.2
  done
}

# use_services: the broker and PostgreSQL of scripts/dev-env (started if they are not running),
# as KAFKA_BROKERS and PG_DSN in the environment of etld and of the pipelines' ${...}.
use_services() {
  eval "$("$src/scripts/dev-env" up)"
  export KAFKA_BROKERS PG_DSN
}
# use_registry: use_services plus the dev environment's schema registry (started if it is not
# running), as SCHEMA_REGISTRY_URL; avro_produce is the real Avro serializer (scripts/avro-produce).
use_registry() {
  eval "$("$src/scripts/dev-env" up --registry)"
  export KAFKA_BROKERS PG_DSN SCHEMA_REGISTRY_URL
}
avro_produce="$src/scripts/avro-produce"
psql_q() { "$src/scripts/dev-env" psql -tAc "$1"; }
# rows: how many rows $table holds (0 while it does not exist).
rows() { psql_q "select count(*) from $table" 2>/dev/null || echo 0; }
# rows_are N: $table holds N rows (for wait_for, which runs its command again each time).
rows_are() { test "$(rows)" = "$1"; }

# admin_port LOG: the port etld's admin endpoint says in LOG it listens on, waiting up to 10 s for
# the line; empty if it never comes.
admin_port() {
  local port=
  for _ in $(seq 1 100); do
    port=$(grep -o 'admin endpoint listening on 127.0.0.1:[0-9]*' "$1" | sed 's/.*://' || true)
    [ -n "$port" ] && break; sleep 0.1
  done
  echo "$port"
}
promcheck="$src/tests/support/promtext_check.py"
# metric PREFIX: the value of the first sample in $tmp/samples (promcheck's output) that starts
# with PREFIX.
metric() { awk -v k="$1" 'index($0, k) == 1 {print $NF; exit}' "$tmp/samples"; }

# kafka_map_postgres FILE PIPELINE [dsn=DSN] [max_rows=N] [dead_letter=TABLE]: writes to FILE the
# pipeline the monitoring tests run (top, monitoring, admin_metrics_services): kafka (topic $topic,
# group g_$run_id, librdkafka statistics every 300 ms so that the lag shows soon) -> map (twice:
# id * 2, which rejects a record whose id is not a number) -> postgres into $table (created; id
# required, twice), batches of max_rows (default 500) or 20 ms, the admin endpoint on a free port.
# dsn defaults to ${PG_DSN}; dead_letter names a dead-letter table (default: none).
kafka_map_postgres() {
  local file=$1 name=$2 dsn='${PG_DSN}' max_rows=500 dead_letter= opt
  shift 2
  for opt in "$@"; do
    case $opt in
    dsn=*) dsn=${opt#dsn=} ;;
    max_rows=*) max_rows=${opt#max_rows=} ;;
    dead_letter=*) dead_letter=${opt#dead_letter=} ;;
    *) echo "kafka_map_postgres: unknown option $opt" >&2; return 2 ;;
    esac
  done
  cat >"$file" <<YAML
pipeline: $name
admin: { address: "127.0.0.1:0" }
stages:
  in:
    type: kafka
    brokers: \${KAFKA_BROKERS}
    topics: [$topic]
    group: g_$run_id
    librdkafka: { statistics.interval.ms: "300" }
  parse:
    type: map
    inputs: [in]
    set: { twice: "id * 2" }
  out:
    type: postgres
    inputs: [parse]
    dsn: "$dsn"
    table: $table
    create_table: true
    batch: { max_rows: $max_rows, max_wait: 20ms }
    columns:
      id: { from: id, type: bigint, required: true }
      twice: { from: twice, type: bigint }
YAML
  if [ -n "$dead_letter" ]; then echo "    dead_letter: { table: $dead_letter }" >>"$file"; fi
}

# start_etld FILE: runs `etld run FILE` in the background as $pid, its stderr in $tmp/run.log, and
# sets admin to the HOST:PORT its admin endpoint listens on (waiting up to 10 s for it).
start_etld() {
  "$etld" run "$1" 2>"$tmp/run.log" &
  pid=$!
  admin="127.0.0.1:$(admin_port "$tmp/run.log")"
}
