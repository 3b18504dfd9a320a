#!/usr/bin/env bash
# End-to-end test of scripts/dev-env: a real Kafka broker and PostgreSQL on
# non-default ports with a temporary state dir; up (twice), env, status, topic,
# produce (plain and keyed), psql, pg-stop/pg-start, the progress line of up on a terminal (and
# none through a pipe or in CI), up --registry (the schema
# registry stand-in, the real Avro serializer registering in it), registry-stop/
# registry-start, the CDC source cluster of scripts/cdc, down.
# Exits non-zero on failure; ends with a "N passed, N failed" line.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DEV=$ROOT/scripts/dev-env

export ETLD_DEV_DIR
ETLD_DEV_DIR=$(mktemp -d /tmp/etld-dev-test.XXXXXX)
export ETLD_KAFKA_PORT=${DEV_ENV_TEST_KAFKA_PORT:-29092}
export ETLD_KAFKA_CONTROLLER_PORT=$((ETLD_KAFKA_PORT + 1))
export ETLD_PG_PORT=${DEV_ENV_TEST_PG_PORT:-25432}
export ETLD_REGISTRY_PORT=${DEV_ENV_TEST_REGISTRY_PORT:-28081}

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*" >&2; }
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}

cleanup() {
    "$DEV" down >/dev/null 2>&1 || true
    rm -rf "$ETLD_DEV_DIR" "$ETLD_DEV_DIR".*
}
trap cleanup EXIT

# --- up (cold for this dir), on a terminal ----------------------------------------
# stderr on a pseudo-terminal (script(1), its output recorded in up.tty), stdout to a file: the
# progress line must say what up waits for, and stdout must hold the export lines alone.
# CI and NO_PROGRESS unset, as on a developer's terminal.
on_terminal() { env -u CI -u NO_PROGRESS script -qec "$2" "$1" >/dev/null </dev/null; }
t0=${EPOCHREALTIME/[.,]/}
if ! on_terminal "$ETLD_DEV_DIR.up.tty" "'$DEV' up >'$ETLD_DEV_DIR.up.out'"; then
    echo "FAIL: dev-env up failed" >&2
    cat "$ETLD_DEV_DIR.up.tty" >&2
    exit 1
fi
t1=${EPOCHREALTIME/[.,]/}
echo "dev-env up took $(((t1 - t0) / 1000)) ms"
out=$(cat "$ETLD_DEV_DIR.up.out")
expected="export KAFKA_BROKERS=127.0.0.1:$ETLD_KAFKA_PORT
export PG_DSN='postgresql://etld:etld@127.0.0.1:$ETLD_PG_PORT/etld'"
check "up prints exactly the export lines" test "$out" == "$expected"
check "on a terminal, up says it waits for the broker, with the seconds" \
    grep -qE $'\r'"dev-env: waiting for the Kafka broker to answer on 127.0.0.1:$ETLD_KAFKA_PORT \([0-9]+s\)" "$ETLD_DEV_DIR.up.tty"
check "... and for PostgreSQL's start" grep -qF $'\r'"dev-env: PostgreSQL: starting on 127.0.0.1:$ETLD_PG_PORT (" "$ETLD_DEV_DIR.up.tty"
check "... erasing it before its last line, which starts a line of its own" \
    grep -qE $'\r'" +"$'\r'"dev-env: up in [0-9]+s: " "$ETLD_DEV_DIR.up.tty"
eval "$out"
check "KAFKA_BROKERS set" test "$KAFKA_BROKERS" == "127.0.0.1:$ETLD_KAFKA_PORT"
check "PG_DSN set" test "$PG_DSN" == "postgresql://etld:etld@127.0.0.1:$ETLD_PG_PORT/etld"

# --- idempotent up, env, status ----------------------------------------------
out2=$("$DEV" up 2>/dev/null) || out2="(up failed)"
check "second up prints the same lines" test "$out2" == "$expected"
out3=$("$DEV" env 2>/dev/null) || out3="(env failed)"
check "env prints the same lines" test "$out3" == "$expected"
check "status says both run" "$DEV" status

# --- topic + produce ------------------------------------------------------------
check "topic create (3 partitions)" "$DEV" topic dev-env-test 3
check "topic create again is idempotent" "$DEV" topic dev-env-test 3
check "produce 5 lines" bash -c "printf 'l1\nl2\nl3\nl4\nl5\n' | '$DEV' produce dev-env-test"
check "produce 3 keyed lines" bash -c "printf 'k1\tv1\nk2\tv2\nk3\tv3\n' | '$DEV' produce --keyed dev-env-test"

# Count the records on the broker: end offsets of the 3 partitions must sum to 8.
libs=$(ls -d "${ETLD_CACHE:-$HOME/.cache/etld}"/kafka-*/libs | head -n1)
offsets=$(java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -cp "$libs/*" org.apache.kafka.tools.GetOffsetShell \
    --bootstrap-server "$KAFKA_BROKERS" --topic dev-env-test --time -1 2>/dev/null) || offsets=""
echo "end offsets: $(echo "$offsets" | tr '\n' ' ')"
nparts=$(echo "$offsets" | grep -c '^dev-env-test:' || true)
total=$(echo "$offsets" | awk -F: '/^dev-env-test:/ {s += $3} END {print s + 0}')
check "topic has 3 partitions" test "$nparts" == 3
check "8 records on the broker" test "$total" == 8

# --- psql ---------------------------------------------------------------------------
check "psql select 1" test "$("$DEV" psql -XAtc 'select 1' 2>&1)" == 1
check "psql via PG_DSN as etld" test "$(psql "$PG_DSN" -XAtc 'select current_user' 2>&1)" == etld
check "create a table" "$DEV" psql -Xq -c 'create table dev_env_test(x int); insert into dev_env_test values (42)'

# --- PostgreSQL outage ---------------------------------------------------------------
check "pg-stop" "$DEV" pg-stop
if "$DEV" psql -XAtc 'select 1' >/dev/null 2>&1; then fail "psql fails while pg is stopped"; else ok "psql fails while pg is stopped"; fi
if "$DEV" status >/dev/null 2>&1; then fail "status fails while pg is stopped"; else ok "status fails while pg is stopped"; fi
check "pg-start" "$DEV" pg-start
check "data kept across pg-stop/pg-start" test "$("$DEV" psql -XAtc 'select x from dev_env_test' 2>&1)" == 42
# up starting PostgreSQL again: no progress line through a pipe, nor on a terminal with CI set.
"$DEV" pg-stop
out_piped=$("$DEV" up 2>"$ETLD_DEV_DIR.piped.err") || out_piped="(up failed)"
check "piped: up prints the same lines" test "$out_piped" == "$expected"
logs_without_progress() { grep -q 'starting postgresql' "$1" && ! grep -q $'\r' "$1"; }
check "... and its log lines, with no progress line (no carriage return)" logs_without_progress "$ETLD_DEV_DIR.piped.err"
"$DEV" pg-stop
check "with CI set, up on a terminal starts PostgreSQL again" on_terminal "$ETLD_DEV_DIR.ci.tty" "CI=true '$DEV' up >/dev/null"
no_progress_line() { grep -q 'starting postgresql' "$1" && ! grep -q 'dev-env: PostgreSQL: starting' "$1"; }
check "... showing no progress line" no_progress_line "$ETLD_DEV_DIR.ci.tty"

# --- schema registry -------------------------------------------------------------------
registry=http://127.0.0.1:$ETLD_REGISTRY_PORT
with_registry="$expected
export SCHEMA_REGISTRY_URL=$registry"
out4=$("$DEV" up --registry 2>/dev/null) || out4="(up --registry failed)"
check "up --registry adds SCHEMA_REGISTRY_URL" test "$out4" == "$with_registry"
out5=$("$DEV" up 2>/dev/null) || out5="(up failed)"
check "a plain up afterwards still exports it" test "$out5" == "$with_registry"
check "status says the registry runs" bash -c "'$DEV' status | grep -q '^schema registry: running'"
schema='{"schema": "{\"type\": \"record\", \"name\": \"R\", \"fields\": [{\"name\": \"a\", \"type\": \"long\"}]}"}'
post() { curl -sf -X POST -H 'Content-Type: application/vnd.schemaregistry.v1+json' --data "$schema" "$registry/subjects/$1/versions"; }
check "registering a schema gives id 1" test "$(post s1-value)" == '{"id": 1}'
check "the same schema in another subject has the same id" test "$(post s2-value)" == '{"id": 1}'
schema_name() { curl -sf "$registry/schemas/ids/$1" | python3 -c 'import json, sys; print(json.loads(json.load(sys.stdin)["schema"])["name"])'; }
check "GET /schemas/ids/1 returns it" test "$(schema_name 1)" == R
check "an unknown id is 404 with Confluent's error 40403" \
    test "$(curl -s -w ' %{http_code}' "$registry/schemas/ids/7")" == '{"error_code": 40403, "message": "Schema 7 not found"} 404'
check "the real Avro serializer registers and produces" bash -c \
    "echo '{\"a\": 5}' | '$ROOT/scripts/avro-produce' --topic dev-env-avro --schema <(echo '{\"type\": \"record\", \"name\": \"R2\", \"fields\": [{\"name\": \"a\", \"type\": \"int\"}]}') --brokers '$KAFKA_BROKERS' --registry '$registry'"
check "... under the subject TOPIC-value" test "$(curl -sf "$registry/subjects/dev-env-avro-value/versions")" == '[1]'
check "registry-stop" "$DEV" registry-stop
check "registry port closed after registry-stop" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$ETLD_REGISTRY_PORT) 2>/dev/null"
check "registry-start" "$DEV" registry-start
check "schemas kept across registry-stop/registry-start" test "$(schema_name 1) $(schema_name 2)" == "R R2"

# --- the CDC source cluster (scripts/cdc), which down takes down too -------------------------
export ETLD_CDC_PG_PORT=${DEV_ENV_TEST_CDC_PG_PORT:-25499}
check "cdc up prints the source's DSN" test "$("$ROOT/scripts/cdc" up 2>/dev/null)" == \
  "export CDC_SOURCE_DSN='postgresql://etld:etld@127.0.0.1:$ETLD_CDC_PG_PORT/etld'"
check "the source cluster has logical WAL" test "$("$ROOT/scripts/cdc" psql -XAtc 'show wal_level' 2>&1)" == logical

# --- down ------------------------------------------------------------------------------
check "down" "$DEV" down
check "cdc source port closed after down" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$ETLD_CDC_PG_PORT) 2>/dev/null"
check "cdc state removed" test ! -e "$ETLD_DEV_DIR/cdc"
check "registry port closed after down" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$ETLD_REGISTRY_PORT) 2>/dev/null"
check "kafka port closed after down" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$ETLD_KAFKA_PORT) 2>/dev/null"
check "pg port closed after down" bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$ETLD_PG_PORT) 2>/dev/null"
check "state dir removed" test ! -e "$ETLD_DEV_DIR/kafka" -a ! -e "$ETLD_DEV_DIR/pg"
if "$DEV" env >/dev/null 2>&1; then fail "env fails after down"; else ok "env fails after down"; fi

echo "dev_env_test: $passed passed, $failed failed"
((failed == 0))
