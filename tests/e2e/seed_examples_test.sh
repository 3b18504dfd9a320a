#!/usr/bin/env bash
# The seed's two examples through the real etld binary, plus validate/graph/--version.
source "$(dirname "$0")/lib.sh"

"$etld" run "$src/examples/counter.yaml" >"$tmp/counter.out" 2>"$tmp/counter.err"
check "counter prints 0..19 in order" diff <(seq 0 19) "$tmp/counter.out"

"$etld" run "$src/examples/partitioned-sum.yaml" >"$tmp/sum.out" 2>"$tmp/sum.err"
sort "$tmp/sum.out" >"$tmp/sum.sorted"
cat >"$tmp/sum.expected" <<'OUT'
{"sum":249706,"count":249,"partition":0}
{"sum":249794,"count":251,"partition":2}
{"sum":249800,"count":250,"partition":3}
{"sum":251700,"count":250,"partition":1}
OUT
check "partitioned sums are exact" diff "$tmp/sum.expected" "$tmp/sum.sorted"
total=$(grep -o '"sum":[0-9]*' "$tmp/sum.out" | cut -d: -f2 | awk '{s+=$1} END {print s}')
check "the sums add up to 1001000" test "$total" = 1001000

check "validate accepts the examples" "$etld" validate "$src/examples/counter.yaml"
cat >"$tmp/bad.yaml" <<'YAML'
stages:
  producer:
    type: generate
    cuont: 5
  printer:
    type: stdout
    inputs: [prodcer]
YAML
set +e
"$etld" validate "$tmp/bad.yaml" 2>"$tmp/bad.err"; rc=$?
"$etld" run "$tmp/bad.yaml" >/dev/null 2>"$tmp/run.err"; run_rc=$?
set -e
check "validate exits 1 on a bad file" test "$rc" = 1
check "unknown option located with did-you-mean" grep -q "bad.yaml:4:5: error: .*'cuont'.*did you mean 'count'" "$tmp/bad.err"
check "unknown input located with did-you-mean" grep -q "bad.yaml:7:14: error: .*'prodcer'.*did you mean 'producer'" "$tmp/bad.err"
check "run refuses a bad file" test "$run_rc" = 1
check "graph draws a Mermaid flowchart" bash -c "'$etld' graph '$src/examples/partitioned-sum.yaml' | grep -q 's_double -- \"partition_by .\" --> s_sum'"
check "--version names etld" bash -c "'$etld' --version | grep -q '^etld '"

# SIGTERM drains an endless pipeline and exits 0.
cat >"$tmp/endless.yaml" <<'YAML'
stages:
  producer: { type: generate, rate: 2000 }
  out: { type: stdout, inputs: [producer] }
YAML
"$etld" run "$tmp/endless.yaml" >"$tmp/endless.out" 2>"$tmp/endless.err" &
pid=$!
sleep 1
kill -TERM "$pid"
set +e; wait "$pid"; term_rc=$?; set -e
pid=
check "SIGTERM drains and exits 0" test "$term_rc" = 0
lines=$(wc -l <"$tmp/endless.out")
check "the drained output is gapless" diff <(seq 0 $((lines - 1))) "$tmp/endless.out"

finish
