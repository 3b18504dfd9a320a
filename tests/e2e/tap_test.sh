#!/usr/bin/env bash
# etld tap against the real binary running kafka -> map -> postgres on the real broker and
# PostgreSQL while a producer loads the topic: the events sampled at the map are its output (the
# record with the field it sets), each with the topic, partition and offset the table's row of
# the same record holds; --limit, --rate and --max-bytes hold; the text output shows one line per
# event. Without the token, with a wrong one, for an unknown stage, and from a daemon without an
# admin token the tap is refused with a clear message, and the token appears nowhere: not in
# etld's log nor in the command's output. Every record still reaches the table: tapping lost
# nothing, and etld drains and exits 0.
source "$(dirname "$0")/lib.sh"
use_services

run_id="tap_$(date +%s%N | tail -c 9)"
topic="t_$run_id" table="rows_$run_id"
total=3000
"$src/scripts/dev-env" topic "$topic" 2 >/dev/null

token=$(head -c 24 /dev/urandom | base64)
(umask 077 && echo "$token" >"$tmp/token")
wrong_token=$(head -c 24 /dev/urandom | base64)
(umask 077 && echo "$wrong_token" >"$tmp/wrong")

# $total keyed records over about 15 s, so that events pass the map whenever the test taps it.
python3 - "$total" <<'PY' | "$src/scripts/dev-env" produce --keyed "$topic" 2>/dev/null &
import json, sys, time
total = int(sys.argv[1])
for i in range(1, total + 1):
    print(f"{i}\t" + json.dumps({"id": i, "name": "n" * 40}))
    if i % 20 == 0:
        sys.stdout.flush()
        time.sleep(0.1)
PY
bg_pids+=($!)

cat >"$tmp/p.yaml" <<YAML
pipeline: tap_e2e
admin: { address: "127.0.0.1:0" }
stages:
  in:
    type: kafka
    brokers: \${KAFKA_BROKERS}
    topics: [$topic]
    group: g_$run_id
  parse:
    type: map
    inputs: [in]
    set: { twice: "id * 2" }
  out:
    type: postgres
    inputs: [parse]
    dsn: \${PG_DSN}
    table: $table
    create_table: true
    batch: { max_rows: 200, max_wait: 20ms }
    columns:
      id: { from: id, type: bigint, required: true }
      twice: { from: twice, type: bigint }
      part: { from: _partition, type: int }
      off: { from: _offset, type: bigint }
YAML
"$etld" run "$tmp/p.yaml" --admin-token-file "$tmp/token" 2>"$tmp/run.log" &
pid=$!
admin="127.0.0.1:$(admin_port "$tmp/run.log")"
check "the admin endpoint is up" test "$admin" != "127.0.0.1:"
check "... and says tap needs the token" grep -q 'GET /tap need the bearer token' "$tmp/run.log"
check "records reach the table" wait_for 60 bash -c "test \"\$('$src/scripts/dev-env' psql -tAc 'select count(*) from $table' 2>/dev/null || echo 0)\" -gt 0"

# The command line of docs/operations.md's example, with --json.
check "etld tap --json samples 20 events of the map" \
  "$etld" tap parse --admin "$admin" --token-file "$tmp/token" --limit 20 --rate 20 --json >"$tmp/tap.json" 2>"$tmp/tap.err"
python3 - "$tmp/tap.json" "$topic" >"$tmp/checks" 2>&1 <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
topic = sys.argv[2]
events = [l for l in lines if "end" not in l and "dropped" not in l]
end = lines[-1].get("end")
def say(name, ok): print(("ok " if ok else "FAIL ") + name)
say("20 events then the end line, which says the limit was reached",
    len(events) == 20 and end is not None and end["reason"] == "limit reached" and end["sampled"] == 20)
say("every event is the map's output: its record with twice = id * 2",
    all(json.loads(e["value"])["twice"] == 2 * json.loads(e["value"])["id"] for e in events))
say("each from the stage parse, the topic, partition 0 or 1, an offset",
    all(e["stage"] == "parse" and e["topic"] == topic and e["partition"] in (0, 1) and e["offset"] >= 0
        for e in events))
say("the key is the record's id, nothing cut",
    all(e["key"] == str(json.loads(e["value"])["id"]) and not e["key_truncated"] and not e["value_truncated"]
        for e in events))
say("the offsets grow within each partition (one map instance keeps order)",
    all([e["offset"] for e in events if e["partition"] == p] == sorted(e["offset"] for e in events if e["partition"] == p)
        for p in (0, 1)))
with open(sys.argv[1] + ".ids", "w") as f:
    for e in events:
        f.write(f'{e["partition"]} {e["offset"]} {json.loads(e["value"])["id"]}\n')
PY
while read -r verdict name; do check "$name" test "$verdict" = ok; done <"$tmp/checks"

# --rate 5 --limit 10: a second's worth (5) at once, then 5 more at 5 a second: about 1 s.
start=$(date +%s%N)
check "etld tap prints one line per event" \
  "$etld" tap parse --admin "$admin" --token-file "$tmp/token" --limit 10 --rate 5 --max-bytes 8 >"$tmp/tap.txt" 2>"$tmp/tap_txt.err"
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
check "--rate 5: 10 events take at least 0.9 s (took ${elapsed_ms} ms)" test "$elapsed_ms" -ge 900
check "... 10 lines: STAGE TOPIC/PARTITION@OFFSET key=KEY VALUE" \
  test "$(grep -cE "^parse  $topic/[01]@[0-9]+  key=[0-9]+  " "$tmp/tap.txt")" = 10
check "--max-bytes 8: the values are cut to 8 bytes and marked" \
  test "$(grep -cE '  \{"id":[0-9,"a-z]{0,3} \[cut\]$' "$tmp/tap.txt")" = 10
check "... the summary on stderr" grep -qE "^etld tap: 10 events sampled of [0-9]+ that left 'parse' \(limit reached; 0 dropped\)" "$tmp/tap_txt.err"

# Refusals: a clear message naming the address, status 1; never the token.
set +e
"$etld" tap parse --admin "$admin" --token-file "$tmp/wrong" --limit 1 >"$tmp/wrong.out" 2>"$tmp/wrong.err"; rc_wrong=$?
"$etld" tap nosuch --admin "$admin" --token-file "$tmp/token" --limit 1 >"$tmp/unknown.out" 2>"$tmp/unknown.err"; rc_unknown=$?
env -u ETLD_ADMIN_TOKEN_FILE "$etld" tap parse --admin "$admin" >/dev/null 2>"$tmp/notoken.err"; rc_notoken=$?
"$etld" tap parse --admin 127.0.0.1:1 --token-file "$tmp/token" 2>"$tmp/down.err"; rc_down=$?
curl -s -o "$tmp/curl.out" -w '%{http_code}' "http://$admin/tap?stage=parse&limit=1" >"$tmp/curl.code"
set -e
check "a wrong token: status 1" test "$rc_wrong" = 1
check "... 401, naming the address" grep -q "the admin endpoint at $admin answered GET /tap?stage=parse.* with 401: the bearer token is not the one in admin.token_file" "$tmp/wrong.err"
check "an unknown stage: status 1, 404 listing the stages" \
  test "$rc_unknown" = 1 -a -n "$(grep "with 404: tap: no stage 'nosuch' in the pipeline (its stages: in, parse, out)" "$tmp/unknown.err")"
check "no token file: usage error 2, saying where the token comes from" \
  test "$rc_notoken" = 2 -a -n "$(grep -- '--token-file' "$tmp/notoken.err")"
check "no daemon there: status 1, naming the address" \
  test "$rc_down" = 1 -a -n "$(grep 'cannot connect to the admin endpoint at 127.0.0.1:1' "$tmp/down.err")"
check "GET /tap without a token: 401" test "$(cat "$tmp/curl.code")" = 401

# A daemon without an admin token: tap is off.
cat >"$tmp/open.yaml" <<'YAML'
pipeline: tap_off
admin: { address: "127.0.0.1:0" }
stages:
  gen: { type: generate, rate: 100 }
  out: { type: "null", inputs: [gen] }
YAML
"$etld" run "$tmp/open.yaml" 2>"$tmp/open.log" &
open_pid=$!
bg_pids+=("$open_pid")
open_admin="127.0.0.1:$(admin_port "$tmp/open.log")"
set +e
"$etld" tap gen --admin "$open_admin" --token-file "$tmp/token" --limit 1 2>"$tmp/off.err"; rc_off=$?
set -e
check "a daemon without admin.token_file: status 1, 403: tap is off until a token is configured" \
  test "$rc_off" = 1 -a -n "$(grep "with 403: tap is off until an admin token is configured" "$tmp/off.err")"
kill -TERM "$open_pid"; wait "$open_pid" || true

# Everything arrives, and the sampled events are the rows of the same topic/partition/offset.
check "all $total records reach the table" wait_for 120 rows_are "$total"
check "... each once" test "$(psql_q "select count(distinct id) from $table")" = "$total"
check "... transformed" test "$(psql_q "select count(*) from $table where twice = 2 * id")" = "$total"
mismatched=0
while read -r part off id; do
  [ "$(psql_q "select id from $table where part = $part and off = $off")" = "$id" ] || mismatched=$((mismatched + 1))
done <"$tmp/tap.json.ids"
check "every sampled event is the row of its partition and offset" test "$mismatched" = 0

kill -TERM "$pid"
set +e; wait "$pid"; rc=$?; set -e
pid=
check "etld drains and exits 0" test "$rc" = 0
check "the token is nowhere in etld's log" bash -c "! grep -qF -- '$token' '$tmp/run.log' '$tmp/open.log'"
check "... nor the wrong one" bash -c "! grep -qF -- '$wrong_token' '$tmp/run.log'"
check "... nor in the command's output" bash -c "! cat '$tmp'/*.out '$tmp'/*.err '$tmp/tap.json' '$tmp/tap.txt' | grep -qF -- '$token'"
check "... nor the wrong token in its output" bash -c "! cat '$tmp'/*.out '$tmp'/*.err | grep -qF -- '$wrong_token'"
check "the log says who tapped what, and how it ended" \
  grep -qE "admin endpoint: tap on stage 'parse' by 127.0.0.1:[0-9]+ ended: 20 sampled, 0 dropped" "$tmp/run.log"
if [ "$fail" != 0 ]; then
  echo "--- run log"; tail -30 "$tmp/run.log"; echo "--- tap.json"; head -5 "$tmp/tap.json"; cat "$tmp/tap.err"
  echo "--- tap.txt"; cat "$tmp/tap.txt" "$tmp/tap_txt.err"; cat "$tmp/checks"
fi >&2
finish
