#!/usr/bin/env bash
# etld under a test NOTIFY_SOCKET, as systemd runs it (Type=notify, WatchdogSec=): the exact
# notifications in order (READY, STATUS, RELOADING + READY on SIGHUP, STOPPING on SIGTERM),
# watchdog pings and their stop when a sink wedges, and SIGHUP reloads through the real binary:
# a changed transform and a changed sink are the only stages rebuilt, the source keeps running
# (no event lost or repeated), and an invalid file is refused with file:line:column while the
# old pipeline keeps moving data.
source "$(dirname "$0")/lib.sh"
listener=
listener2=
etld_pid=
cleanup() {
  [[ -n $etld_pid ]] && kill -KILL "$etld_pid" 2>/dev/null || true
  [[ -n $listener ]] && kill "$listener" 2>/dev/null || true
  [[ -n $listener2 ]] && kill "$listener2" 2>/dev/null || true
  [[ -n ${KEEP_TMP:-} ]] || rm -rf "$tmp"
}
wait_for_line() {  # seconds, pattern, file: waits until the file has a line matching the pattern
  local deadline=$((SECONDS + $1))
  until grep -q -- "$2" "$3" 2>/dev/null; do
    if ((SECONDS >= deadline)); then echo "timed out waiting for '$2' in $3" >&2; return 1; fi
    sleep 0.05
  done
}
lines() { wc -l <"$1" 2>/dev/null || echo 0; }

start_listener() {  # socket, log: a notify socket as systemd's, its messages one per line
  python3 "$src/tests/e2e/support/notify_listener.py" "$1" "$2" >/dev/null &  # not on $(...)'s pipe
  local started=$!
  for _ in $(seq 100); do [[ -S $1 ]] && break; sleep 0.05; done
  echo "$started"
}
listener=$(start_listener "$tmp/notify.sock" "$tmp/notify.log")

write_pipeline() {  # factor, output file
  cat >"$tmp/pipeline.yaml" <<YAML
pipeline: notify-test
stages:
  producer: { type: generate, rate: 4000, template: '{"n": {{seq}}}' }
  scale: { type: map, inputs: [producer], set: { v: "n * $1" } }
  out: { type: file_out, inputs: [scale], path: "$tmp/$2" }
YAML
}
write_pipeline 2 out1.jsonl

NOTIFY_SOCKET=$tmp/notify.sock WATCHDOG_USEC=600000 "$etld" run "$tmp/pipeline.yaml" 2>"$tmp/etld.log" &
etld_pid=$!
wait_for_line 10 '^READY=1$' "$tmp/notify.log"
wait_for_line 10 '^STATUS=generation 1: [1-9][0-9]* events/s in' "$tmp/notify.log"

# 1. A changed transform option: only 'scale' is rebuilt.
write_pipeline 3 out1.jsonl
kill -HUP "$etld_pid"
wait_for_line 10 'reload: generation 2' "$tmp/etld.log"
check "the changed transform alone is restarted" grep -q 'reload: generation 2 (config [0-9a-f]*) running; restarted: scale$' "$tmp/etld.log"

# 2. A changed sink option: only 'out' is rebuilt, writing to its new file from then on.
sleep 0.5
write_pipeline 3 out2.jsonl
kill -HUP "$etld_pid"
wait_for_line 10 'reload: generation 3' "$tmp/etld.log"
check "the changed sink alone is restarted" grep -q 'reload: generation 3 (config [0-9a-f]*) running; restarted: out$' "$tmp/etld.log"

# 3. An invalid file: refused with file:line:column, and the pipeline goes on.
sleep 0.5
cp "$tmp/pipeline.yaml" "$tmp/good.yaml"
cat >"$tmp/pipeline.yaml" <<YAML
pipeline: notify-test
stages:
  producer: { type: generate, rate: 4000, template: '{"n": {{seq}}}' }
  scale: { type: map, inputs: [producer], set: { v: "n * 3" } }
  out: { type: file_out, inputs: [scael], path: "$tmp/out3.jsonl" }
YAML
kill -HUP "$etld_pid"
wait_for_line 10 'reload refused' "$tmp/etld.log"
check "the refusal names file:line:column and the culprit" \
  grep -q "pipeline.yaml:5:35: error: input 'scael'.*did you mean 'scale'" "$tmp/etld.log"
before=$(lines "$tmp/out2.jsonl")
sleep 1
after=$(lines "$tmp/out2.jsonl")
check "the old pipeline keeps moving data after a refused reload ($before -> $after lines)" test "$after" -gt "$((before + 1000))"
check "nothing was written to the refused file's sink" test ! -e "$tmp/out3.jsonl"
cp "$tmp/good.yaml" "$tmp/pipeline.yaml"

kill -TERM "$etld_pid"
set +e; wait "$etld_pid"; rc=$?; set -e
etld_pid=
check "SIGTERM drains and exits 0 (got $rc)" test "$rc" = 0
sleep 0.2

# The notifications, in order, leaving out the periodic rates and watchdog pings.
grep -v -e '^WATCHDOG=1$' -e '^STATUS=generation [0-9]*: ' -e '^STATUS=draining: ' "$tmp/notify.log" \
  | sed -E 's/config [0-9a-f]{16}/config HASH/' >"$tmp/sequence"
cat >"$tmp/expected" <<'EOF2'
READY=1
STATUS=pipeline 'notify-test' running (generation 1)
RELOADING=1
READY=1
STATUS=reloaded: generation 2 (config HASH), restarted scale
RELOADING=1
READY=1
STATUS=reloaded: generation 3 (config HASH), restarted out
RELOADING=1
READY=1
STATUS=reload refused (config HASH), generation 3 keeps running
STOPPING=1
STATUS=draining
EOF2
check "the notifications come in the expected order" diff "$tmp/expected" "$tmp/sequence"
pings=$(grep -c '^WATCHDOG=1$' "$tmp/notify.log" || true)
check "the watchdog is fed every 300ms while the pipeline progresses ($pings pings)" test "$pings" -ge 5

# Every event exactly once across both sink files, in order; the factor switched once, from 2 to 3.
check "every generated event landed exactly once, in order, across the reloads" python3 - "$tmp/out1.jsonl" "$tmp/out2.jsonl" <<'PY'
import json, sys
rows = [json.loads(line) for path in sys.argv[1:] for line in open(path)]
ns = [r["n"] for r in rows]
assert ns == list(range(len(ns))), "gap or repeat in the sequence"
factors = [r["v"] // r["n"] for r in rows if r["n"]]
switch = factors.index(3)
assert set(factors[:switch]) == {2} and set(factors[switch:]) == {3}, "factors not switched once"
print(f"{len(ns)} events, factor 3 from event {switch + 1}", file=sys.stderr)
PY

# 4. A wedged stage in the real binary: a postgres sink whose server does not answer holds its
# events and finishes none of them, so the progress check stops the watchdog pings (systemd would
# restart etld) and names the stage. Port 1 on loopback refuses every connection.
listener2_log=$tmp/notify-wedge.log
listener2=$(start_listener "$tmp/notify-wedge.sock" "$listener2_log")
cat >"$tmp/wedge.yaml" <<'YAML'
pipeline: notify-wedge
shutdown_timeout: 1s
stages:
  producer: { type: generate, rate: 1000, template: '{"n": {{seq}}}' }
  db:
    type: postgres
    inputs: [producer]
    dsn: postgresql://etld@127.0.0.1:1/etld
    table: never_reached
    columns: { n: { from: n, type: bigint } }
YAML
NOTIFY_SOCKET=$tmp/notify-wedge.sock WATCHDOG_USEC=600000 "$etld" run "$tmp/wedge.yaml" 2>"$tmp/wedge.log" &
etld_pid=$!
wait_for_line 15 "watchdog: stage 'db' (instance 0) holds [0-9]* unfinished events and made no progress" "$tmp/wedge.log"
check "the wedged sink is named in the log" \
  grep -q "watchdog: stage 'db' (instance 0) holds [0-9]* unfinished events and made no progress" "$tmp/wedge.log"
stopped_at=$(grep -c '^WATCHDOG=1$' "$listener2_log" || true)
sleep 1.5  # five ping periods
later=$(grep -c '^WATCHDOG=1$' "$listener2_log" || true)
check "no WATCHDOG=1 while the sink is wedged ($stopped_at -> $later pings)" test "$later" = "$stopped_at"
check "READY=1 came first: the pipeline ran before it wedged" grep -q '^READY=1$' "$listener2_log"
kill -KILL "$etld_pid" 2>/dev/null || true
etld_pid=
kill "$listener2" 2>/dev/null || true

finish
