#!/usr/bin/env bash
# etld top against the real binary running kafka -> map -> postgres on the real broker and
# PostgreSQL (the pipeline of lib.sh's kafka_map_postgres), while a producer keeps loading the
# topic: `etld top --once --json` must show rows per second written and events per second through
# every stage, a lag for each of the 3 partitions and their total, batch size and latency with its
# p50 and p99; --once prints the same as text. The live view runs in tmux: the screen must name
# the stages and show a rate, q must quit it and give the terminal back as it was (echo, line
# mode, the main screen), and so must Ctrl-C.
source "$(dirname "$0")/lib.sh"
use_services
command -v tmux >/dev/null || { echo "tmux is not installed (scripts/install-deps installs it)" >&2; exit 1; }

run_id="top_$(date +%s%N | tail -c 9)"
topic="t_$run_id" table="rows_$run_id"
"$src/scripts/dev-env" topic "$topic" 3 >/dev/null
tmux_socket="etld_$run_id"
cleanup_top() {
  tmux -L "$tmux_socket" kill-server 2>/dev/null || true
  cleanup
}
trap cleanup_top EXIT

# A steady load for up to 120 s: 2000 records a second in tenths, so that etld is loading
# whenever top looks. Its pid is kept so that cleanup stops it (and so the producer ends).
python3 - "$tmp/producer.pid" <<'PY' | "$src/scripts/dev-env" produce --keyed "$topic" 2>/dev/null &
import json, os, sys, time
open(sys.argv[1], "w").write(str(os.getpid()))
i = 0
end = time.time() + 120
while time.time() < end:
    for _ in range(200):
        i += 1
        print(f"{i}\t" + json.dumps({"id": i}))
    sys.stdout.flush()
    time.sleep(0.1)
PY
wait_for 10 test -s "$tmp/producer.pid"
bg_pids+=("$(cat "$tmp/producer.pid")")

kafka_map_postgres "$tmp/p.yaml" top_e2e
start_etld "$tmp/p.yaml"
check "the admin endpoint is up" test "$admin" != "127.0.0.1:"

# The view once the source reports a lag for each partition and rows are arriving.
json_ok() {
  "$etld" top --admin "$admin" --once --json --interval 500ms >"$tmp/top.json" 2>"$tmp/top.err" || return 1
  python3 - "$tmp/top.json" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
lags = [p for p in v["kafka"]["partitions"] if p["lag"] is not None]
sys.exit(0 if len(lags) == 3 and v["postgres"] and (v["postgres"][0]["rows_per_second"] or 0) > 0 else 1)
PY
}
check "etld top --once --json shows rows arriving and a lag per partition" wait_for 60 json_ok
check "--json is one JSON object on one line" test "$(wc -l <"$tmp/top.json")" = 1
python3 - "$tmp/top.json" >"$tmp/checks" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
stages = {s["name"]: s for s in v["stages"]}
pg = v["postgres"][0]
parts = v["kafka"]["partitions"]
def say(name, ok): print(("ok " if ok else "FAIL ") + name)
say("the pipeline's name, generation 1, ready, the last reload ok",
    v["pipeline"] == "top_e2e" and v["generation"] == 1 and v["ready"] is True and v["last_reload_ok"] is True)
say("the rates are over about the interval", 0.4 <= v["interval_seconds"] <= 3)
say("the three stages in start order with their types",
    [(s["name"], s["type"]) for s in v["stages"]] == [("in", "kafka"), ("parse", "map"), ("out", "postgres")])
say("events leave the source and pass the map at a plausible rate (0 < rate < 100000/s)",
    0 < stages["in"]["events_out_per_second"] < 100000 and 0 < stages["parse"]["events_out_per_second"] < 100000)
say("the sink receives events", stages["out"]["events_in_per_second"] > 0)
say("no dead letters, failures or restarts",
    all(s["dead_lettered"] == 0 and s["failed"] == 0 and s["restarts"] == 0 for s in v["stages"]))
say("postgres: rows/s plausible, batches of 1..500 rows, a latency, connected, no retries",
    0 < pg["rows_per_second"] < 100000 and 1 <= pg["batch_rows"] <= 500 and 0 < pg["batch_seconds"] < 10
    and pg["connected"] is True and pg["retries"] == 0 and pg["stage"] == "out")
say("postgres: batch latency p50 and p99 from the histogram, 0 < p50 <= p99 <= 10 s",
    pg["batch_seconds_p50"] is not None and pg["batch_seconds_p99"] is not None
    and 0 < pg["batch_seconds_p50"] <= pg["batch_seconds_p99"] <= 10)
say("a row per partition 0, 1, 2 of the topic, each with a lag >= 0",
    sorted(p["partition"] for p in parts) == [0, 1, 2] and all(p["lag"] >= 0 for p in parts)
    and all(p["stage"] == "in" for p in parts))
say("the total lag is the sum of the partitions'", v["kafka"]["total_lag"] == sum(p["lag"] for p in parts))
say("the partitions fetch at a rate", sum(p["fetched_per_second"] for p in parts) > 0)
PY
while read -r verdict name; do check "$name" test "$verdict" = ok; done <"$tmp/checks"

check "etld --help describes etld top" bash -c "'$etld' --help | grep -q '^  etld top \[--admin HOST:PORT\]'"
check "etld top --help says what it shows" bash -c "'$etld' top --help | grep -q 'Kafka lag'"
check "etld top --once prints the view as text" "$etld" top --admin "$admin" --once --interval 300ms >"$tmp/top.txt"
check "... the stage table" grep -qE '^STAGE +TYPE +INST +IN/s +OUT/s' "$tmp/top.txt"
check "... a row per stage" test "$(grep -cE '^(in +kafka|parse +map|out +postgres) ' "$tmp/top.txt")" = 3
check "... the kafka section" grep -qE '^KAFKA +TOPIC' "$tmp/top.txt"
check "... the total lag" grep -qE '^total lag [0-9]+ over 3 partitions' "$tmp/top.txt"
check "... the postgres section, with the latency's percentiles" grep -qE '^POSTGRES +ROWS/s.* LATENCY +P50 +P99 ' "$tmp/top.txt"

# The live view in a 120x40 terminal.
live() {  # $1 name of the run: the pane runs top, then records its exit status and the terminal
  tmux -L "$tmux_socket" new-session -d -s "$1" -x 120 -y 40 \
    "stty -a >'$tmp/$1.stty-before'; '$etld' top --admin '$admin' --interval 500ms; echo \$? >'$tmp/$1.exit'; stty -a >'$tmp/$1.stty-after'; sleep 600"
}
screen() { tmux -L "$tmux_socket" capture-pane -p -t "$1"; }
# The screen shows rates (not "waiting"), the three stages and a rate > 0 in the sink's IN/s.
screen_live() {
  screen "$1" >"$tmp/$1.screen"
  grep -q 'rates over' "$tmp/$1.screen" && grep -qE '^in +kafka' "$tmp/$1.screen" &&
    grep -qE '^parse +map' "$tmp/$1.screen" &&
    awk '$1 == "out" && $2 == "postgres" && $4 + 0 > 0 {found = 1} END {exit !found}' "$tmp/$1.screen"
}
live q_run
check "the live view shows the stages and a rate" wait_for 20 screen_live q_run
check "... the Kafka partitions" grep -qE '^in +t_top_[0-9]+ +[0-2] ' "$tmp/q_run.screen"
check "... the PostgreSQL sink" grep -qE '^out +[0-9.]+ ' "$tmp/q_run.screen"
check "... and how to quit" grep -q 'q or Ctrl-C quits' "$tmp/q_run.screen"
check "... every line fits the 120 columns" awk 'length($0) > 120 {exit 1}' "$tmp/q_run.screen"
tmux -L "$tmux_socket" send-keys -t q_run q
check "q quits with status 0" wait_for 5 grep -qx 0 "$tmp/q_run.exit"
check "... giving the terminal back as it was (echo, line mode)" diff "$tmp/q_run.stty-before" "$tmp/q_run.stty-after"
check "... and the main screen back" bash -c "! tmux -L '$tmux_socket' capture-pane -p -t q_run | grep -q 'STAGE'"

live c_run
check "the live view runs again" wait_for 20 screen_live c_run
tmux -L "$tmux_socket" send-keys -t c_run C-c
check "Ctrl-C quits with status 0" wait_for 5 grep -qx 0 "$tmp/c_run.exit"
check "... giving the terminal back as it was" diff "$tmp/c_run.stty-before" "$tmp/c_run.stty-after"

# The daemon is not there: a clear error, status 1; a usage error is 2.
set +e
"$etld" top --admin 127.0.0.1:1 --once 2>"$tmp/down.err"; rc_down=$?
"$etld" top --once 2>/dev/null </dev/null; rc_usage=$?
env -u ETLD_ADMIN_ADDRESS "$etld" top --admin "$admin" --interval fast 2>"$tmp/usage.err"; rc_interval=$?
"$etld" top --admin "$admin" </dev/null >/dev/null 2>"$tmp/notty.err"; rc_notty=$?
set -e
check "an endpoint that is not there: status 1" test "$rc_down" = 1
check "... saying what could not be reached" grep -q 'cannot connect to the admin endpoint at 127.0.0.1:1 (GET /metrics): Connection refused' "$tmp/down.err"
check "no --admin and no ETLD_ADMIN_ADDRESS: usage error 2" test "$rc_usage" = 2
check "a bad --interval: usage error 2, saying why" test "$rc_interval" = 2 -a -n "$(grep 'expected a duration' "$tmp/usage.err")"
check "the live view without a terminal: usage error 2, pointing at --once" \
  test "$rc_notty" = 2 -a -n "$(grep -- '--once' "$tmp/notty.err")"

kill -TERM "$pid"
set +e; wait "$pid"; rc=$?; set -e
pid=
check "etld drains and exits 0 (top changed nothing)" test "$rc" = 0
if [ "$fail" != 0 ]; then
  echo "--- run log"; tail -20 "$tmp/run.log"; echo "--- top.json"; cat "$tmp/top.json"; cat "$tmp/top.err"
  echo "--- top.txt"; cat "$tmp/top.txt"; echo "--- screen"; cat "$tmp/q_run.screen" 2>/dev/null
fi >&2
finish
