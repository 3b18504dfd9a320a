#!/usr/bin/env bash
# The schema registry over HTTPS: records of the real serializer decode with schemas fetched from a
# registry that serves TLS only, trusted through schema_registry.ca_file (a certificate of a CA
# made for the test, not in the system's store). With a ca_file of another CA the handshake fails:
# etld names the verification failure, retries (it is the registry's or the setup's to fix, never
# the records'), writes no dead letter, and once restarted with the right CA loads every record.
source "$(dirname "$0")/avro_lib.sh"
avro_run avtls
cat >"$tmp/value.avsc" <<'JSON'
{"type": "record", "name": "Item", "namespace": "etld.test",
 "fields": [{"name": "id", "type": "long"}, {"name": "name", "type": "string"}]}
JSON
check "records are produced through the real serializer" bash -c \
  "seq 1 20 | awk '{printf \"{\\\"id\\\": %d, \\\"name\\\": \\\"item %d\\\"}\\n\", \$1, \$1}' |
   '$avro_produce' --topic '$topic' --schema '$tmp/value.avsc'"

# A CA, a server certificate it signs for 127.0.0.1, and an unrelated CA.
make_ca() {
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=etld test $1" \
    -keyout "$tmp/$1.key" -out "$tmp/$1.pem" 2>/dev/null
}
check "a test CA is made" make_ca ca
check "an unrelated CA is made" make_ca other
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$tmp/server.key" \
  -out "$tmp/server.csr" 2>/dev/null
printf 'subjectAltName = IP:127.0.0.1\n' >"$tmp/san.ext"
check "the server certificate is signed" openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" \
  -CAkey "$tmp/ca.key" -CAcreateserial -days 2 -extfile "$tmp/san.ext" -out "$tmp/server.pem"

# An HTTPS registry holding the dev registry's schemas (a copy of its store, made after producing).
dev_dir=${ETLD_DEV_DIR:-/tmp/etld-dev-$(id -u)}
cp "$dev_dir/registry/schemas.json" "$tmp/schemas.json"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
python3 "$src/scripts/registry-standin" --port "$port" --store "$tmp/schemas.json" \
  --tls-cert "$tmp/server.pem" --tls-key "$tmp/server.key" 2>"$tmp/tls-registry.log" &
registry_pid=$!
trap 'kill "$registry_pid" 2>/dev/null || true' EXIT
https_up() { curl -sf --cacert "$tmp/ca.pem" "https://127.0.0.1:$port/subjects" >/dev/null; }
check "the HTTPS registry answers with the test CA" wait_for 10 https_up
check "... and refuses plain HTTP" bash -c "! curl -sf 'http://127.0.0.1:$port/subjects' >/dev/null"

pipeline() {  # pipeline CA_FILE
  cat <<YAML
pipeline: avro_registry_tls
stages:
$(avro_source "  ca_file: $1" "  timeout: 2s")
  out:
    type: postgres
    inputs: [in]
    dsn: \${PG_DSN}
    table: $table
    create_table: true
    batch: { max_rows: 100, max_wait: 50ms }
    delivery: exactly_once
    offsets_table: ${table}_offsets
    columns:
      id: { from: id, type: bigint, required: true }
      name: { from: name, type: text }
    dead_letter: { table: $dlq }
YAML
}

export SCHEMA_REGISTRY_URL=https://127.0.0.1:$port  # the sources' url (avro_source)

# The wrong CA: retried, named, nothing written.
pipeline "$tmp/other.pem" >"$tmp/p.yaml"
start_etld
verify_failed() { grep -q "schema registry.*certificate" "$tmp/run.log"; }
check "a CA that did not sign the registry's certificate: the TLS failure is logged" wait_for 30 verify_failed
check "... the records are held, not dead-lettered" test "$(rows)" = 0
check "... and no dead-letter row" test "$(psql_q "select count(*) from $dlq" 2>/dev/null || echo 0)" = 0
stop_etld
grep -m1 "schema registry" "$tmp/run.log" | sed 's/^/  log: /'

# The right CA: every record, once.
pipeline "$tmp/ca.pem" >"$tmp/p.yaml"
start_etld
check "with the CA that signed it: the twenty records land" wait_for 60 rows_are 20
check "... each once, with their values" \
  test "$(psql_q "select count(distinct id) || ' ' || sum(id) from $table where name = 'item ' || id")" = "20 210"
check "... no dead letter" test "$(psql_q "select count(*) from $dlq" 2>/dev/null || echo 0)" = 0
stop_etld
psql_q "drop table if exists $table, $dlq, ${table}_offsets" >/dev/null
finish
