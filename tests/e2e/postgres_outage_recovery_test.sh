#!/usr/bin/env bash
# PostgreSQL down for ~30 s under the default retry settings, through the real binary: the retry
# warnings say the delay actually waited (summaries of repeated warnings end with the last one,
# not only the first "retrying in 100 ms"), and etld writes again within a few seconds of the
# server's return: the default max_backoff (5 s) bounds the idle time; with the former 30 s the
# next attempt came ~20 s after the server was back.
source "$(dirname "$0")/lib.sh"
use_services
rows_at_least() { (($(rows) >= $1)); }
cleanup() {
  local p
  for p in $pid "${bg_pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  "$src/scripts/dev-env" pg-start >/dev/null 2>&1 || true  # never leave it down
  rm -rf "$tmp"
}

run_id="out_$(date +%s%N | tail -c 9)"
topic="t_$run_id" table="o_$run_id"
"$src/scripts/dev-env" topic "$topic" 1 >/dev/null
cat >"$tmp/p.yaml" <<YAML
pipeline: outage_e2e
stages:
  in:
    type: kafka
    brokers: \${KAFKA_BROKERS}
    topics: [$topic]
    group: g_$run_id
  out:
    type: postgres
    inputs: [in]
    dsn: \${PG_DSN}
    table: $table
    create_table: true
    batch: { max_rows: 1000, max_wait: 20ms }
    columns: { id: { from: id, type: bigint } }
YAML
"$etld" run "$tmp/p.yaml" 2>"$tmp/run.log" &
pid=$!
seq 1 10 | sed 's/.*/{"id": &}/' | "$src/scripts/dev-env" produce "$topic"
check "records flow" wait_for 60 rows_at_least 10

"$src/scripts/dev-env" pg-stop >/dev/null 2>&1
seq 11 20 | sed 's/.*/{"id": &}/' | "$src/scripts/dev-env" produce "$topic"
sleep 30
"$src/scripts/dev-env" pg-start >/dev/null 2>&1
back=$(date +%s)
check "the records of the outage land soon after PostgreSQL is back" wait_for 30 rows_at_least 20
took=$(($(date +%s) - back))
echo "written $took s after PostgreSQL was back" >&2
check "within 8 s of its return (max_backoff 5 s)" test "$took" -lt 8

# libpq's messages span lines (a tab starts the continuation): one log entry per line.
sed -e ':a' -e 'N' -e '$!ba' -e 's/\n\t/ /g' "$tmp/run.log" >"$tmp/entries.log"
delays=$(grep -oE "retrying [^;]*in [0-9]+ ms" "$tmp/entries.log" | grep -oE "[0-9]+ ms" | sort -un | tr '\n' ' ')
echo "retry delays logged: $delays" >&2
check "the retry warnings say the grown delays, up to the 5000 ms cap" grep -qE "retrying [^;]*in 5000 ms" "$tmp/entries.log"
check "a summary of repeated retries ends with the last delay" \
  grep -qE "repeated [0-9]+ times in the last [0-9]+s; the last: .*retrying [^;]*in [0-9]+ ms" "$tmp/entries.log"
check "no delay above the cap is announced" bash -c "! grep -qE 'retrying [^;]*in ([6-9][0-9]{3}|[0-9]{5,}) ms' '$tmp/entries.log'"

kill -TERM "$pid"
rc=0; wait "$pid" || rc=$?
pid=
check "SIGTERM exits 0" test "$rc" = 0
finish
