#!/usr/bin/env bash
# Progress on a terminal (docs/operations.md, "Progress on a terminal"): `etld validate
# --against-db` on a sink with 30 tables, run under a pseudo-terminal (script(1)), must show the
# stage and table k of n on one line redrawn with \r, then erase it before its verdict; piped, or
# with CI or NO_PROGRESS set, stderr must hold the verdict alone. bench/run's progress line
# (bench/progress.py, the module bench/run draws with) the same: under a pseudo-terminal the
# scenario, repetition, contender and rows; piped or with NO_PROGRESS, nothing. scripts/dev-env
# up is checked in tests/e2e/dev_env_test.sh (it starts services of its own).
source "$(dirname "$0")/lib.sh"
use_services
command -v script >/dev/null || { echo "script (util-linux) is not installed" >&2; exit 1; }

run_id="prog_$(date +%s%N | tail -c 9)"
n=30
tables=
for i in $(seq 1 "$n"); do
  psql_q "create table t_${run_id}_$i (id bigint primary key, v text)" >/dev/null
  tables+="      topic_${run_id}_$i: t_${run_id}_$i"$'\n'
done
cleanup_tables() {
  for i in $(seq 1 "$n"); do psql_q "drop table if exists t_${run_id}_$i" >/dev/null 2>&1 || true; done
  cleanup
}
trap cleanup_tables EXIT
cat >"$tmp/v.yaml" <<YAML
pipeline: progress_e2e
stages:
  in:
    type: kafka
    brokers: \${KAFKA_BROKERS}
    topics: [$(seq -s, -f "topic_${run_id}_%g" 1 "$n")]
    group: g_$run_id
  out:
    type: postgres
    inputs: [in]
    dsn: \${PG_DSN}
    tables:
$tables    columns: { id: { from: id, type: bigint }, v: text }
YAML

# on_terminal FILE CMD: runs CMD (a shell command line) with stdin, stdout and stderr on a
# pseudo-terminal, recording what it writes there in FILE; CI and NO_PROGRESS unset unless CMD
# sets them. Its exit status is CMD's.
on_terminal() { env -u CI -u NO_PROGRESS script -qec "$2" "$1" >/dev/null </dev/null; }

verdict="$tmp/v.yaml: ok (2 stages)"
check "validate --against-db on a terminal passes" on_terminal "$tmp/validate.tty" "'$etld' validate --against-db '$tmp/v.yaml'"
check "... showing the stage it checks" grep -qF $'\r''validate --against-db: stage 1 of 1 (out)' "$tmp/validate.tty"
check "... and each table k of n" grep -qF "validate --against-db: stage 1 of 1 (out): table $n of $n (t_${run_id}_" "$tmp/validate.tty"
check "... every one of them" test "$(grep -oF "): table " "$tmp/validate.tty" | wc -l)" -ge "$n"
check "... the line erased before the verdict, which starts a line of its own" \
  grep -qE $'\r'" +"$'\r'"$(printf '%s' "$verdict" | sed 's/[.()/]/\\&/g')"$'\r'"?$" "$tmp/validate.tty"

"$etld" validate --against-db "$tmp/v.yaml" >"$tmp/piped.out" 2>"$tmp/piped.err" </dev/null
check "piped: stderr holds the verdict alone" test "$(cat "$tmp/piped.err")" = "$verdict"
check "... and stdout nothing" test ! -s "$tmp/piped.out"
check "with CI set, on a terminal, no progress" on_terminal "$tmp/ci.tty" "CI=true '$etld' validate --against-db '$tmp/v.yaml'"
check "... only the verdict" bash -c "! grep -q 'validate --against-db: stage' '$tmp/ci.tty' && grep -qF '$verdict' '$tmp/ci.tty'"
on_terminal "$tmp/np.tty" "NO_PROGRESS=1 '$etld' validate --against-db '$tmp/v.yaml'" || true
check "with NO_PROGRESS set, on a terminal, no progress" bash -c "! grep -q 'validate --against-db: stage' '$tmp/np.tty'"

# A table missing: the error is reported whole, on a line of its own after the erased progress.
psql_q "drop table t_${run_id}_17" >/dev/null
set +e
on_terminal "$tmp/bad.tty" "'$etld' validate --against-db '$tmp/v.yaml'"; rc_bad=$?
set -e
check "a missing table fails validation (exit 1)" test "$rc_bad" = 1
check "... naming it at the start of a line" grep -qE "(^|"$'\r'")$(printf '%s' "$tmp/v.yaml" | sed 's/[./]/\\&/g'):[0-9]+:[0-9]+: error: table t_${run_id}_17 does not exist" "$tmp/bad.tty"

# bench/run's progress line, driven as bench/run drives it.
bench_progress='
import sys, time
sys.path.insert(0, sys.argv[1])
from progress import Progress
p = Progress()
p.start_scenario(2, 8, "e2e")
p.set_step("narrow insert, no index", 0, 3, "etld")
p.loaded(12345, 40000)
time.sleep(1.2)  # the ticker redraws the seconds
p.clear()
print("table on stdout")
'
printf '%s' "$bench_progress" >"$tmp/bench_progress.py"
check "bench/run's progress on a terminal" on_terminal "$tmp/bench.tty" "python3 '$tmp/bench_progress.py' '$src/bench'"
check "... says the scenario i of n, the repetition, the contender and the rows loaded" \
  grep -qF $'\r''bench: scenario 2/8 e2e, repetition 1/3, etld, 12,345/40,000 rows, ' "$tmp/bench.tty"
check "... redrawn as the seconds go on" grep -qF 'rows, 1s' "$tmp/bench.tty"
python3 "$tmp/bench_progress.py" "$src/bench" >"$tmp/bench.out" 2>"$tmp/bench.err"
check "piped: no progress on stderr, stdout unchanged" test ! -s "$tmp/bench.err" -a "$(cat "$tmp/bench.out")" = "table on stdout"
on_terminal "$tmp/bench-np.tty" "NO_PROGRESS=1 python3 '$tmp/bench_progress.py' '$src/bench'"
check "with NO_PROGRESS set, on a terminal, none" bash -c "! grep -q 'bench: scenario' '$tmp/bench-np.tty'"
check "bench/run still starts (it imports the module)" bash -c "'$src/bench/run' --help | grep -q -- '--quick'"
finish
