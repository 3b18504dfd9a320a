# shellcheck shell=bash
# Shared by the exactly_once_*_test.sh scripts (sourced, not a test itself), on top of lib.sh: the
# real broker and PostgreSQL from scripts/dev-env, etld processes started by name in the background
# and killed on exit (their logs shown when a check failed), every check said ok or FAIL.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
use_services
declare -A pid_of=()
cleanup() {
  for p in "${pid_of[@]}" "${bg_pids[@]}"; do kill -CONT "$p" 2>/dev/null || true; kill -9 "$p" 2>/dev/null || true; done
  if [[ ${fail:-0} != 0 || -n ${KEEP_LOGS:-} ]]; then
    for f in "$tmp"/*.log; do [[ -e $f ]] && { echo "--- $f (last lines)"; tail -25 "$f"; }; done >&2
  fi
  # A test that stops PostgreSQL sets restart_pg_on_exit, so a failure never leaves it down.
  [[ -n ${restart_pg_on_exit:-} ]] && { "$src/scripts/dev-env" pg-start >/dev/null 2>&1 || true; }
  [[ -n ${KEEP_LOGS:-} ]] && cp -r "$tmp" "$KEEP_LOGS"  # a directory to keep every log in
  rm -rf "$tmp"
}
check_says_ok=1
psql_q() { "$src/scripts/dev-env" psql -tAc "$1" 2>/dev/null; }
run_id="eo_$(date +%s%N | tail -c 9)"

# produce_stream TOPIC N PER_TENTH: N JSON records {seq, id, v} keyed by id (id = seq % 500,
# v = seq / 500: the versions of an id share a partition, increase, and lie ~125 offsets apart,
# inside the window a crash replays), PER_TENTH records every 0.1 s, in the background.
produce_stream() {
  local topic=$1 n=$2 rate=$3
  python3 -u - "$n" "$rate" <<'PY' | "$src/scripts/dev-env" produce --keyed "$topic" 2>"$tmp/producer.log" &
import json, sys, time
n, rate = int(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    print(f"{i % 500}\t" + json.dumps({"seq": i, "id": i % 500, "v": i // 500}))
    if (i + 1) % rate == 0:
        sys.stdout.flush()
        time.sleep(0.1)
PY
  producer_pid=$!
  bg_pids+=("$producer_pid")
}

# eo_pipeline FILE GROUP TABLE INSTANCE_ID [EXTRA_LIBRDKAFKA]: topic $topic -> TABLE (no key, so
# duplicates would show) with delivery: exactly_once; static membership as INSTANCE_ID.
eo_pipeline() {
  local file=$1 group=$2 table=$3 instance=$4 extra=${5:-}
  cat >"$file" <<YAML
pipeline: eo
stages:
  in:
    type: kafka
    brokers: \${KAFKA_BROKERS}
    topics: [$topic]
    group: $group
    max_in_flight_per_partition: 2000
    revoke_timeout: 3s
    librdkafka: { group.instance.id: "$instance", session.timeout.ms: "6000", heartbeat.interval.ms: "500"$extra }
  out:
    type: postgres
    inputs: [in]
    dsn: \${PG_DSN}
    table: $table
    create_table: true
    delivery: exactly_once
    offsets_table: offsets_$run_id
    max_demand: 2000
    batch: { max_rows: 1000, max_wait: 20ms }
    columns:
      seq: { from: seq, type: bigint, required: true }
      part: { from: _partition, type: integer }
      off: { from: _offset, type: bigint }
YAML
}

# start NAME FILE: runs etld in the background; its log is $tmp/NAME.<n>.log.
declare -A runs_of=()
start() {
  local name=$1 file=$2 n=$((${runs_of[$1]:-0} + 1))
  runs_of[$name]=$n
  "$etld" run "$file" 2>"$tmp/$name.$n.log" &
  pid_of[$name]=$!
}
kill9() {
  local p=${pid_of[$1]:-}
  [[ -n $p ]] || return 0
  kill -9 "$p" 2>/dev/null || true
  wait "$p" 2>/dev/null || true
  unset "pid_of[$1]"
}
# stop NAME: SIGTERM and wait; returns etld's exit status.
stop() {
  local p=${pid_of[$1]} rc=0
  kill -TERM "$p" 2>/dev/null || true
  wait "$p" || rc=$?
  unset "pid_of[$1]"
  return $rc
}
# The exactly-once table holds every seq in [0, N) exactly once.
exactly_once_in() { [[ $(psql_q "select count(*) || '/' || count(distinct seq) || '/' || coalesce(min(seq), -1) || '/' || coalesce(max(seq), -1) from $1") == "$2/$2/0/$(($2 - 1))" ]]; }
distinct_seqs() { psql_q "select count(distinct seq) from $1" || echo 0; }
at_least() { local v; v=$(distinct_seqs "$1"); [[ ${v:-0} -ge $2 ]]; }
