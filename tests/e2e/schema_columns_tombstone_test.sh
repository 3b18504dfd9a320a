#!/usr/bin/env bash
# A postgres sink without `columns:` (columns from the records' Avro schema, the key from the Avro
# key schema) deletes the row of a tombstone's key, as it does with `columns:` and as Kafka
# Connect's JDBC sink does with delete.enabled=true and pk.mode=record_key: a tombstone carries no
# value, hence no value schema, but its key names the row. Records by the real serializer, the
# real binary, broker and PostgreSQL. Also after a restart, when the tombstone is the first record
# the new process reads.
source "$(dirname "$0")/avro_lib.sh"
avro_run sct

cat >"$tmp/key.avsc" <<'JSON'
{"type": "record", "name": "ItemKey", "namespace": "etld.test", "fields": [{"name": "id", "type": "long"}]}
JSON
cat >"$tmp/value.avsc" <<'JSON'
{"type": "record", "name": "Item", "namespace": "etld.test",
 "fields": [{"name": "id", "type": "long"}, {"name": "name", "type": "string"}]}
JSON
produce() { "$avro_produce" --topic "$topic" --schema "$tmp/value.avsc" --key-schema "$tmp/key.avsc"; }
check "records 1-3, then a tombstone of key 2, are produced" produce <<'JSON'
{"key": {"id": 1}, "value": {"id": 1, "name": "one"}}
{"key": {"id": 2}, "value": {"id": 2, "name": "two"}}
{"key": {"id": 3}, "value": {"id": 3, "name": "three"}}
{"key": {"id": 2}, "value": null}
JSON
cat >"$tmp/p.yaml" <<YAML
pipeline: schema_tombstones
stages:
$(avro_source "  timeout: 5s" "key_format: avro")
  out:
    type: postgres
    inputs: [in]
    dsn: \${PG_DSN}
    table: $table
    mode: upsert
    create_table: true
    batch: { max_rows: 100, max_wait: 20ms }
    dead_letter: { table: $dlq }
YAML
ids() { psql_q "select string_agg(id::text, ',' order by id) from $table" 2>/dev/null || true; }
dead() { psql_q "select count(*) from $dlq" 2>/dev/null || echo 0; }
settled() { [[ $(ids) == 1,3 || $(dead) != 0 ]]; }
start_etld
wait_for 60 settled || true
check "the tombstone deleted row 2" test "$(ids)" = 1,3
check "nothing was dead-lettered" test "$(dead)" = 0
stop_etld

# A restart whose first record is a tombstone.
check "a tombstone of key 3 is produced" produce <<<'{"key": {"id": 3}, "value": null}'
start_etld
settled_again() { [[ $(ids) == 1 || $(dead) != 0 ]]; }
wait_for 30 settled_again || true
check "the first record after a restart, a tombstone, deleted row 3" test "$(ids)" = 1
check "still nothing dead-lettered" test "$(dead)" = 0
stop_etld
finish
