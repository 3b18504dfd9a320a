#!/usr/bin/env bash
# One password, placed everywhere a secret goes: in DSNs (a URI through ${file:}, key=value written
# in the file, valid ones that log in and broken ones libpq cannot parse), in a kafka source's
# librdkafka SASL settings (pointed at the plaintext broker, so librdkafka fails to authenticate
# and logs about it, with its own debug logging on) and in a generate template through ${file:}.
# The kafka source's SASL password is another one, written only there: the kafka stage's
# configure remembers nothing, the pipeline that runs it does (StageFactory::secrets).
# Then every output of the real binary is searched for it: validate, graph and reference, the log
# lines of runs in text and JSON at debug level, every admin endpoint, a refused reload, and the
# dead-letter rows in PostgreSQL. Records with a newline and a terminal escape must not forge a log
# line or a dead-letter reason, and a pipeline name with a quote must keep the JSON log valid.
source "$(dirname "$0")/lib.sh"
use_services

run_id="sec_$(date +%s%N | tail -c 9)"
pw="Zq8-sEcReT-$run_id-x7"
kpw="Kf4-kAfKaPw-$run_id-y9"
role="r_$run_id" topic="t_$run_id" table="t_$run_id" dlq="dl_$run_id"
pg_host=$(python3 -c "import sys, urllib.parse as u; p = u.urlsplit(sys.argv[1]); print(p.hostname, p.port, p.path.lstrip('/'))" "$PG_DSN")
read -r host port db <<<"$pg_host"

cleanup_role() { psql_q "drop owned by $role; drop role if exists $role" >/dev/null 2>&1 || true; }
trap 'cleanup_role; cleanup' EXIT
psql_q "create role $role login password '$pw'; grant create on schema public to $role" >/dev/null
umask 077
printf '%s\n' "$pw" >"$tmp/pw"

"$src/scripts/dev-env" topic "$topic" 1 >/dev/null
{
  printf '1\t{"id": 1, "note": "7"}\n'
  # Bad values holding a newline and a terminal escape (as JSON escapes, decoded by etld): one the
  # sink cannot write (a dead letter), one the map rejects (a log line and a dead letter).
  printf '2\t{"id": "x\\n2026-01-01 00:00:00.000 error [db] forged line\\u001b[2J", "note": "7"}\n'
  printf '3\t{"id": 3, "note": "7"}\n'
  printf '4\t{"id": 4, "note": "y\\n2026-01-01 00:00:00.000 error [db] forged line\\u001b[2J"}\n'
} | "$src/scripts/dev-env" produce --keyed "$topic"

# pipeline FILE PIPELINE_NAME DSN LOG_FORMAT GROUP: kafka -> map -> postgres, plus a kafka source
# that authenticates with SASL PLAIN against the plaintext broker (and fails to).
pipeline() {
  cat >"$1" <<YAML
pipeline: '$2'
log_level: debug
log_format: $4
stages:
  in:
    type: kafka
    brokers: \${KAFKA_BROKERS}
    topics: [$topic]
    group: g_$5_$run_id
    start_from: earliest
  sasl_in:
    type: kafka
    brokers: \${KAFKA_BROKERS}
    topics: [$topic]
    group: g_sasl_$run_id
    librdkafka: {sasl.mechanism: PLAIN, sasl.username: u, sasl.password: '$kpw', security.protocol: SASL_PLAINTEXT, debug: 'security,broker,conf'}
  parse:
    type: map
    inputs: [in, sasl_in]
    set: { n: "to_int(lower(note))" }
  out:
    type: postgres
    inputs: [parse]
    dsn: "$3"
    table: $table
    create_table: true
    columns:
      id: { from: id, type: bigint }
      n: { from: n, type: integer }
    dead_letter: { table: $dlq }
YAML
}
uri_dsn="postgresql://$role:\${file:$tmp/pw}@$host:$port/$db"
kv_dsn="host=$host port=$port dbname=$db user=$role password='$pw'"
pipeline "$tmp/uri.yaml" 'sec"ret %d' "$uri_dsn" json a
pipeline "$tmp/kv.yaml" 'secrets' "$kv_dsn" text b
check "the password is in the pipeline files (the search below can find it)" grep -q -- "$pw" "$tmp/kv.yaml" "$tmp/pw"
check "so is the kafka password" grep -q -- "$kpw" "$tmp/kv.yaml"

# ---- validate, graph and reference: valid and broken DSNs -------------------------------------
n=0
out_of() {  # out_of CMD...: runs CMD, appending its stdout and stderr to a numbered file
  n=$((n + 1))
  "$@" >"$tmp/out.$n" 2>&1 || true
}
out_of "$etld" validate "$tmp/uri.yaml"
check "validate accepts the URI DSN read through \${file:}" grep -q ': ok (4 stages)' "$tmp/out.$n"
out_of "$etld" validate --against-db "$tmp/kv.yaml"
check "validate --against-db logs in with the key=value DSN" grep -q ': ok (4 stages)' "$tmp/out.$n"
sed "s/user=$role/user=nobody_$run_id/" "$tmp/kv.yaml" >"$tmp/wrong-user.yaml"
out_of "$etld" validate --against-db "$tmp/wrong-user.yaml"
check "a failed login says why" grep -q 'password authentication failed' "$tmp/out.$n"
broken=(
  "postgresql://$role:Sup3r%zz$pw@$host:$port/$db"                 # bad percent-encoding
  "postgresql://$role:$pw@[fd00::1/$db"                            # unclosed IPv6 bracket
  "host=$host user=$role password=$pw tail-of-$pw dbname=$db"      # unquoted space
  "host=$host password='$pw dbname=$db"                            # unterminated quote
  "postgresql://$role:p@$pw@$host:$port/$db"                       # unencoded '@'
  "postgresql://$role:${pw//-//}@$host:$port/$db"                  # unencoded '/'
  "postgresql://$role:$pw@$host:$port/$db?sslmode=require&$pw"     # a parameter without '='
)
for dsn in "${broken[@]}"; do
  pipeline "$tmp/broken.yaml" secrets "$dsn" text c
  out_of "$etld" validate "$tmp/broken.yaml"
  check "validate refuses a broken DSN ($(cut -c1-40 <<<"$dsn" | sed "s/$pw/PW/")), located at the dsn" \
    grep -q 'broken.yaml:[0-9]*:[0-9]*: error: option .dsn.: ' "$tmp/out.$n"
  out_of "$etld" graph "$tmp/broken.yaml"
  out_of "$etld" run "$tmp/broken.yaml"
done
out_of "$etld" graph "$tmp/uri.yaml"
out_of "$etld" reference
cat >"$tmp/gen.yaml" <<YAML
stages:
  gen: { type: generate, count: 1, template: '{"pw": \${file:$tmp/pw}}' }
  out: { type: stdout, inputs: [gen] }
YAML
out_of "$etld" validate "$tmp/gen.yaml"
check "a template that does not render JSON is named as written" grep -q 'as written: {"pw": ${file:' "$tmp/out.$n"

# ---- runs: JSON logs (URI DSN) with the admin endpoint and a refused reload; text logs (key=value) --
"$etld" run "$tmp/uri.yaml" --admin-address 127.0.0.1:0 2>"$tmp/run-json.log" &
pid=$!
aport=$(admin_port "$tmp/run-json.log")
check "the admin endpoint listens" test -n "$aport"
counts() { psql_q "select (select count(*) from $table) || '/' || (select count(*) from $dlq)" 2>/dev/null; }
counts_are() { test "$(counts)" = "$1"; }
check "the good records and the two dead letters arrive" wait_for 60 counts_are 2/2
check "librdkafka logged the SASL source's failure to authenticate" \
  wait_for 30 grep -qiE 'sasl|authentic' "$tmp/run-json.log"
base="http://127.0.0.1:$aport"
for path in metrics healthz readyz pipeline reload log_level; do
  curl -s "$base/$path" >"$tmp/admin.$path" 2>&1 || true
done
pipeline "$tmp/uri.yaml" 'sec"ret %d' "postgresql://$role:Sup3r%zz$pw@$host:$port/$db" json a
kill -HUP "$pid"
check "the reload is refused" wait_for 20 grep -q 'reload refused' "$tmp/run-json.log"
curl -s "$base/reload" >"$tmp/admin.reload-after" 2>&1 || true
check "GET /reload says why, located" grep -q 'option .dsn.: cannot be parsed by libpq' "$tmp/admin.reload-after"
curl -s -X POST "$base/reload" >"$tmp/admin.post-reload" 2>&1 || true
kill -TERM "$pid"
wait "$pid" || true
pid=
check "every JSON log line is one valid JSON object, the pipeline name with its quote intact" python3 - "$tmp/run-json.log" <<'PY'
import json, sys
lines = open(sys.argv[1], encoding="utf-8").read().splitlines()
assert lines, "no log lines"
for line in lines:
    obj = json.loads(line)
    assert obj["pipeline"] == 'sec"ret %d', obj
PY

"$etld" run "$tmp/kv.yaml" 2>"$tmp/run-text.log" &
pid=$!
check "the second run (another group) writes them again" wait_for 60 counts_are 4/4
kill -TERM "$pid"
wait "$pid" || true
pid=
check "text log lines all start with a timestamp: the record's newline forged none" \
  bash -c "! grep -qvE '^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:.]+ ' '$tmp/run-text.log'"
check "no raw terminal escape reaches the log" bash -c "! grep -q $'\x1b' '$tmp/run-text.log' '$tmp/run-json.log'"
check "the rejected value is in the log, escaped" grep -q 'y\\n2026-01-01 00:00:00.000 error' "$tmp/run-text.log"

# ---- dead-letter rows ---------------------------------------------------------------------------
psql_q "select * from $dlq" >"$tmp/dead-letters"
check "the sink's reason shows the bad value escaped" \
  test "$(psql_q "select count(*) from $dlq where error like 'column id (bigint): ''x\\\\n2026-01-01 00:00:00.000 error [db] forged line\\\\x1b[2J'' is not an integer'")" = 2
check "no reason holds a newline or a terminal escape" \
  test "$(psql_q "select count(*) from $dlq where position(E'\\n' in error) > 0 or position(E'\\x1b' in error) > 0")" = 0

# ---- the search --------------------------------------------------------------------------------
outputs=("$tmp"/out.* "$tmp"/admin.* "$tmp/run-json.log" "$tmp/run-text.log" "$tmp/dead-letters")
# "sEcReT" is a piece of the password alone: a part of it (the tail libpq took for a keyword, the
# rest after an unencoded '@') counts as a leak too; "kAfKaPw" likewise for the kafka password.
leaks=$(grep -l -F -e "$pw" -e sEcReT -e "$kpw" -e kAfKaPw "${outputs[@]}" || true)
check "the passwords appear in none of ${#outputs[@]} outputs, not even in part" test -z "$leaks"
for f in $leaks; do echo "--- $f leaks a password:"; grep -F -e "$pw" -e sEcReT -e "$kpw" -e kAfKaPw "$f" | head -5 | cut -c1-400; done >&2
if [ "$fail" != 0 ]; then for f in "$tmp"/out.*; do echo "--- $f"; head -5 "$f"; done; echo "--- json log"; tail -20 "$tmp/run-json.log"; fi >&2
finish
