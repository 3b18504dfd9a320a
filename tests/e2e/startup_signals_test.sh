#!/usr/bin/env bash
# SIGHUP, SIGUSR1 and SIGUSR2 sent while etld starts, before the supervisor handles them, must
# not kill it (their default action ends a process). To hold etld in that window for as long as
# the test needs, its pipeline file is a FIFO: loading it waits until the test writes it.
source "$(dirname "$0")/lib.sh"

mkfifo "$tmp/p.yaml"
"$etld" run "$tmp/p.yaml" --admin-address 127.0.0.1:0 2>"$tmp/run.log" &
pid=$!
# main() ignores the three signals first thing: wait until it did (SigIgn in /proc shows bits
# 1, 10 and 12), or for 3 s, then send them while etld still waits for its file.
ignoring() { python3 -c "import sys; m = int([l.split()[1] for l in open('/proc/$pid/status') if l.startswith('SigIgn:')][0], 16); sys.exit(m & 0xa01 != 0xa01)"; }
wait_for 3 ignoring || echo "etld does not ignore SIGHUP/SIGUSR1/SIGUSR2 at start" >&2
for sig in HUP USR1 USR2; do kill -s "$sig" "$pid" 2>/dev/null || true; done
sleep 0.3
check "etld survives SIGHUP, SIGUSR1 and SIGUSR2 before it runs" kill -0 "$pid"
kill -0 "$pid" 2>/dev/null || { pid=; finish; exit 1; }  # no reader: writing the FIFO would block

cat >"$tmp/p.yaml" <<'YAML'
pipeline: signals_e2e
threads: 1
stages:
  gen: { type: generate, rate: 100 }
  out: { type: "null", inputs: [gen] }
YAML
port=$(admin_port "$tmp/run.log")
check "... then loads its file and serves" test -n "$port"
level_is() { test "$(curl -s "http://127.0.0.1:$port/log_level")" = "$1"; }
check "its level is still the configured one" level_is info
kill -USR1 "$pid"
check "once running, SIGUSR1 raises the level" wait_for 5 level_is debug
kill -TERM "$pid"
set +e; wait "$pid"; rc=$?; set -e
pid=
check "SIGTERM drains and exits 0" test "$rc" = 0
if [ "$fail" != 0 ]; then echo "--- run log"; tail -20 "$tmp/run.log"; fi >&2
finish
