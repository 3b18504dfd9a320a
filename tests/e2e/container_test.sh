#!/usr/bin/env bash
# The container image, built from the Dockerfile by scripts/container (podman), run as a user
# would: against the real broker and PostgreSQL of scripts/dev-env (host network), with a
# pipeline mounted at /etc/etld. Checks that records move from Kafka into PostgreSQL, that etld
# runs as the non-root user etld and is PID 1, that /healthz answers through the image's
# HEALTHCHECK, and that `podman kill --signal TERM` drains the pipeline and exits 0.
set -euo pipefail
src=${ETLD_SOURCE_DIR:?}
eval "$("$src/scripts/dev-env" up)"
export KAFKA_BROKERS PG_DSN
ctr() { "$src/scripts/container" podman "$@"; }
tmp=$(mktemp -d)
name="etld-test-$$"
trap 'ctr rm -f "$name" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
pass=0 fail=0
check() {  # name, then a command that must succeed
  local what=$1; shift
  if "$@"; then pass=$((pass + 1)); else echo "FAIL: $what" >&2; fail=$((fail + 1)); fi
}
psql_q() { "$src/scripts/dev-env" psql -tAc "$1"; }

start=$SECONDS
image=$("$src/scripts/container" build 2>"$tmp/build.log") || {
  tail -40 "$tmp/build.log" >&2; echo "0 passed, 1 failed"; exit 1; }
echo "container_test: image $image built in $((SECONDS - start))s" >&2

check "the image runs as etld, not root" test "$(ctr image inspect --format '{{.Config.User}}' "$image")" = etld
check "/etc/etld is a volume" grep -q '"/etc/etld"' <(ctr image inspect --format '{{json .Config.Volumes}}' "$image")
check "the image has a HEALTHCHECK on /healthz" grep -q '/healthz' <(ctr image inspect --format '{{json .Config.Healthcheck}}' "$image")
check "the image's own default pipeline validates" ctr run --rm --no-healthcheck --network none "$image" validate /etc/etld/pipeline.yaml

# The admin endpoint (--admin-address, /healthz) comes from parallel work; until it is in the
# binary the container runs without it and its assertions are skipped.
admin=0
if ctr run --rm --no-healthcheck --network none "$image" --help | grep -q -- '--admin-address'; then admin=1; fi
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
admin_address=""
((admin)) && admin_address=127.0.0.1:$port

n=2000
run_id="ctr_$(date +%s%N | tail -c 9)"
topic="t_$run_id" table="orders_$run_id"
"$src/scripts/dev-env" topic "$topic" 2 >/dev/null
seq 1 "$n" | awk '{printf "%d\t{\"id\": %d, \"amount\": %d.5}\n", $1, $1, $1}' |
  "$src/scripts/dev-env" produce --keyed "$topic"

# The directory is mounted at /etc/etld, read by the container's etld user: world-readable.
mkdir -p "$tmp/etc"
chmod 755 "$tmp" "$tmp/etc"
cat >"$tmp/etc/pipeline.yaml" <<YAML
pipeline: container
shutdown_timeout: 20s
stages:
  in:
    type: kafka
    brokers: \${KAFKA_BROKERS}
    topics: [$topic]
    group: g_$run_id
    start_from: earliest
  out:
    type: postgres
    inputs: [in]
    dsn: \${PG_DSN}
    table: $table
    create_table: true
    mode: upsert
    key: [id]
    batch: { max_rows: 500, max_wait: 50ms }
    columns:
      id: { from: id, type: bigint, required: true }
      amount: { from: amount, type: numeric }
YAML
chmod 644 "$tmp/etc/pipeline.yaml"

# --health-interval=disable: no systemd timer here to run it; `podman healthcheck run` does.
ctr run -d --name "$name" --network host --health-interval=disable \
  -e KAFKA_BROKERS -e PG_DSN -e "ETLD_ADMIN_ADDRESS=$admin_address" \
  -v "$tmp/etc:/etc/etld:ro" "$image" >/dev/null 2>"$tmp/run.err" || cat "$tmp/run.err" >&2

rows() { psql_q "select count(*) from $table" 2>/dev/null || echo 0; }
for _ in $(seq 1 600); do
  [[ $(rows) -ge $n ]] && break
  [[ $(ctr inspect --format '{{.State.Running}}' "$name" 2>/dev/null) == true ]] || break
  sleep 0.2
done
check "every record reached PostgreSQL through the container" test "$(rows)" = "$n"
check "values are right" test "$(psql_q "select sum(id) || ' ' || min(amount) from $table")" = "$((n * (n + 1) / 2)) 1.5"
check "etld runs as the user etld" test "$(ctr exec "$name" id -un 2>/dev/null)" = etld
check "etld is PID 1 (the stop signal reaches its handlers)" \
  grep -q '^/usr/bin/etld' <(ctr exec "$name" sh -c 'tr "\0" " " </proc/1/cmdline' 2>/dev/null)

if ((admin)); then
  check "/healthz answers 200 on the admin address" \
    test "$(curl -s -o /dev/null -w '%{http_code}' "http://$admin_address/healthz")" = 200
  check "the image's HEALTHCHECK passes" ctr healthcheck run "$name"
else
  echo "container_test: etld has no --admin-address yet: /healthz not checked" >&2
  check "the image's HEALTHCHECK fails with no admin endpoint" bash -c "! $src/scripts/container podman healthcheck run $name >/dev/null 2>&1"
fi

ctr kill --signal TERM "$name" >/dev/null
code=$(timeout 60 "$src/scripts/container" podman wait "$name" 2>/dev/null || echo timeout)
ctr logs "$name" >"$tmp/container.log" 2>&1 || true
check "podman kill --signal TERM: the container exits 0" test "$code" = 0
check "... after draining" grep -q "signal 15: draining" "$tmp/container.log"
check "... to the end" grep -q "pipeline 'container' finished" "$tmp/container.log"

if ((fail)); then echo "--- container log"; tail -30 "$tmp/container.log"; fi >&2
echo "container_test: $((SECONDS - start))s in all" >&2
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
