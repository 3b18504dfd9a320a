#!/usr/bin/env bash
# `etld test FILE...` through the real binary, with no broker and no database: the examples'
# test files and docs/testing.md's pass (so neither can drift from the pipelines and the code),
# every example with a transform has tests, a failing case exits 1 with its file:line, name and
# diff, an invalid test file or pipeline exits 2 with file:line:column errors, and the help says so.
source "$(dirname "$0")/lib.sh"
unset KAFKA_BROKERS PG_DSN  # nothing may need them

# runs CMD..., keeping its stdout in $tmp/out, its stderr in $tmp/err and its status in $status
status=0
run() {
  status=0
  "$@" > "$tmp/out" 2> "$tmp/err" || status=$?
}
has() { grep -qF -- "$1" "$tmp/$2" || { echo "--- $2 lacks: $1" >&2; cat "$tmp/out" "$tmp/err" >&2; return 1; }; }
lacks() { ! grep -qF -- "$1" "$tmp/$2"; }

# ---- the examples -----------------------------------------------------------------------------
cd "$src"
transform_types=$("$etld" stages | awk '$2 == "transform" {print $1}')
for example in examples/*.yaml; do
  [[ $example == *.test.yaml ]] && continue
  uses_transform=
  for t in $transform_types; do
    grep -qE "^\s+type: $t\s*(#.*)?$" "$example" && uses_transform=$t
  done
  [[ -z $uses_transform ]] && continue
  tests=${example%.yaml}.test.yaml
  check "$example (with a $uses_transform) has tests beside it" test -f "$tests"
  run "$etld" test "$tests"
  check "$tests passes" test "$status" = 0
  check "$tests: every case ran" has " 0 failed" out
done
check "the examples have test files" test "$(ls examples/*.test.yaml | wc -l)" -ge 2

# ---- docs/testing.md's files ------------------------------------------------------------------
python3 - "$src/docs/testing.md" "$tmp" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
for block in re.findall(r"```yaml\n(# file: (\S+)\n.*?)```", text, re.S):
    open(f"{sys.argv[2]}/{block[1]}", "w").write(block[0])
# The failure the page shows, as the lines etld prints
shown = re.search(r"```text\n\$ etld test orders-wrong.test.yaml\n(.*?)```", text, re.S).group(1)
open(f"{sys.argv[2]}/orders-wrong.expected", "w").write(shown)
PY
cd "$tmp"
run "$etld" test orders.yaml orders.test.yaml
check "docs/testing.md: its test files pass" test "$status" = 0
check "docs/testing.md: the pipeline's own tests: ran" has "ok   orders.yaml:31: total is price times quantity" out
check "docs/testing.md: all its cases ran" has "3 passed, 0 failed" out
check "a pipeline with tests: validates" "$etld" validate orders.yaml
run "$etld" test orders-wrong.test.yaml
check "docs/testing.md: the failing example exits 1" test "$status" = 1
check "docs/testing.md: the failure shown is what etld prints" diff "$tmp/orders-wrong.expected" "$tmp/out"

# ---- a failing case: file:line, name, diff ----------------------------------------------------
cat > "$tmp/fail.test.yaml" <<'EOF'
pipeline: orders.yaml
tests:
  - name: passes
    stage: priced
    inputs: [{value: {price: 1, quantity: 2}}]
    outputs: [{fields: {total: 2}}]

  - name: one event is missing and one differs
    stages: [priced, big]
    inputs:
      - value: {price: 100, quantity: 1}
      - value: {price: 1, quantity: 1}
      - value: {price: 300, quantity: 1}
    outputs:
      - fields: {total: 100}
      - fields: {total: 200}
      - fields: {total: 1}

  - name: a dead letter that is not there, and one that is
    stage: priced
    ordered: false
    inputs:
      - raw: "{not json"
    dead_letters:
      - reason_contains: "no such reason"
EOF
run "$etld" test fail.test.yaml
check "a failing case exits 1" test "$status" = 1
check "a passing case says ok with its line" has "ok   fail.test.yaml:3: passes" out
check "a failing case names its file:line and name" has "FAIL fail.test.yaml:8: one event is missing and one differs" out
check "the diff counts the events" has "  outputs: expected 3, got 2" out
check "an event that met its expectation is shown as JSON" has '      [0] {"price":100,"quantity":1,"total":100,"customer":null}' out
check "the unmet expectation is marked - with its line" has "    - [1] total = 200  (expected at line 16)" out
check "the event in its place is marked + with why" has \
  '    + [1] {"price":300,"quantity":1,"total":300,"customer":null}  (field '"'total'"' is 300, not 200)' out
check "the expectation no event met is marked -" has "    - [2] total = 1  (expected at line 17)" out
check "a dead letter's reason is shown" has "  dead letters: expected 1, got 1 (in any order)" out
check "the unmatched dead letter is marked - with what it expects" has \
  '    - [0] reason contains "no such reason"  (expected at line 25)' out
check "the actual dead letter is shown raw with its reason" has "\"{not json\"  reason: stage 'priced': " out
check "the tally" has "1 passed, 2 failed" out

run "$etld" test "$src/examples/partitioned-sum.test.yaml" fail.test.yaml
check "several files: one failing makes exit 1" test "$status" = 1
check "several files: all are run" has "4 passed, 2 failed" out

# ---- invalid test files and pipelines: exit 2, file:line:column -------------------------------
printf 'pipeline: orders.yaml\ntests:\n  - name: x\n    stage: priced\n    inputs: []\n    outptus: []\n' > bad-key.test.yaml
run "$etld" test bad-key.test.yaml
check "an unknown key exits 2" test "$status" = 2
check "an unknown key is reported at file:line:column" has \
  "bad-key.test.yaml:6:5: error: unknown key 'outptus' in the test case (did you mean 'outputs'?)" err

printf 'pipeline: orders.yaml\ntests:\n  - name: x\n    stage: db\n    inputs: []\n  - name: y\n    stages: [orders]\n    inputs: []\n  - name: z\n    stages: [big, priced]\n    inputs: []\n  - name: w\n    stage: pricd\n    inputs: []\n' > bad-stage.test.yaml
run "$etld" test bad-stage.test.yaml
check "a test naming a sink, a source or no stage exits 2" test "$status" = 2
check "a sink is refused clearly" has \
  "bad-stage.test.yaml:4:12: error: test 'x': stage 'db' is a sink (postgres); etld test runs transforms only" err
check "a source is refused clearly" has "bad-stage.test.yaml:7:14: error: test 'y': stage 'orders' is a source (kafka)" err
check "a path must follow the inputs" has \
  "bad-stage.test.yaml:10:19: error: test 'z': stage 'priced' does not take its input from 'big'" err
check "an unknown stage, with the one meant" has \
  "bad-stage.test.yaml:13:12: error: test 'w': the pipeline has no stage 'pricd' (did you mean 'priced'?)" err
check "no case of an invalid file runs" lacks "FAIL" out

sed 's/where: "total >= 100"/wher: "total >= 100"/' orders.yaml > broken.yaml
printf 'pipeline: broken.yaml\ntests:\n  - {name: x, stage: priced, inputs: []}\n' > broken.test.yaml
run "$etld" test broken.test.yaml
check "an invalid pipeline exits 2" test "$status" = 2
check "the test file's line that names it" has "broken.test.yaml:1:11: error: the pipeline 'broken.yaml' is invalid:" err
check "the pipeline's errors at their file:line:column" has "broken.yaml:18:5: error: unknown option 'wher' for stage type filter" err

printf 'pipeline: needs-env.yaml\nenv: {ORDERS_DSN: postgresql://unused/}\ntests:\n  - {name: x, stage: priced, inputs: [], outputs: []}\n' > env.test.yaml
sed 's/PG_DSN:-postgresql:\/\/etld@127.0.0.1\/etld/ORDERS_DSN/' orders.yaml > needs-env.yaml
run "$etld" test env.test.yaml
check "env: sets what the pipeline's options need" test "$status" = 0
run "$etld" validate needs-env.yaml
check "(without env:, that pipeline needs the variable)" has "environment variable 'ORDERS_DSN' is not set" err

run "$etld" test missing.test.yaml
check "a missing file exits 2" test "$status" = 2
check "a missing file is named" has "cannot read test file 'missing.test.yaml'" err

# ---- tests: inside a pipeline file do not change what it runs --------------------------------
printf 'pipeline: inline\nstages:\n  numbers: {type: generate, count: 3}\n  double: {type: map, inputs: [numbers], set: {".": ". * 2"}}\n  out: {type: stdout, inputs: [double]}\ntests:\n  - {name: doubles, stage: double, inputs: [{value: 2}], outputs: [{value: 4}]}\n' > inline.yaml
run "$etld" run inline.yaml
check "a pipeline with tests: runs" test "$status" = 0
check "and runs its stages" test "$(cat out)" = "$(printf '0\n2\n4')"
printf 'pipeline: x\nstages:\n  numbers: {type: generate, count: 3}\n  out: {type: stdout, inputs: [numbers]}\ntestz: []\n' > typo.yaml
run "$etld" validate typo.yaml
check "any other unknown top-level key is still refused" has "typo.yaml:5:1: error: unknown top-level key 'testz' (did you mean 'tests'?)" err

# ---- help ---------------------------------------------------------------------------------------
run "$etld" --help
check "etld --help lists etld test" has "etld test FILE..." out
run "$etld" test --help
check "etld test --help explains the format" has "Usage: etld test FILE..." out
check "etld test --help gives the exit codes" has "Exit status: 0 every case passed, 1 a case failed, 2 a test file" out
run "$etld" test
check "etld test without a FILE is a usage error" test "$status" = 2
check "it says a test FILE is needed" has "'test' needs a test FILE" err
finish
