#!/usr/bin/env bash
# Records that are not Avro of a known schema, among records of the real serializer, through the
# real binary: a wrong magic byte (JSON text), an unknown schema id, a corrupt body, trailing bytes
# and a record too short for the header each become a dead-letter row with its reason, topic,
# partition, offset and its bytes exactly; the good records before and after them all land.
source "$(dirname "$0")/avro_lib.sh"
avro_run avdl
cat >"$tmp/value.avsc" <<'JSON'
{"type": "record", "name": "Item", "namespace": "etld.test",
 "fields": [{"name": "id", "type": "long"}, {"name": "name", "type": "string"}]}
JSON
good() {  # good FROM TO: records FROM..TO through the real serializer, keyed by id
  seq "$1" "$2" | awk '{printf "{\"id\": %d, \"name\": \"item %d\"}\n", $1, $1}' |
    "$avro_produce" --topic "$topic" --schema "$tmp/value.avsc" --key-field id
}
check "the first good records are produced" good 1 5
schema_id=$(curl -sf "$SCHEMA_REGISTRY_URL/subjects/$topic-value/versions/latest" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
check "the registry knows the schema's id" test -n "$schema_id"
hex_id=$(printf '%08x' "$schema_id")
# Offsets 5..9, in this order. 0c 02 78 is the Avro body {"id": 6, "name": "x"}.
bad_magic=$(printf '{"id": 6, "name": "json"}' | od -An -tx1 | tr -d ' \n')
unknown_id=007ffffff00c0278
corrupt=00${hex_id}0c1441       # "name" says 10 bytes, 1 follows
trailing=00${hex_id}0c02780000  # a whole record, then two bytes more
short=000000                    # not even the 5-byte header
cat >"$tmp/bad.jsonl" <<JSON
{"raw_value_hex": "$bad_magic", "raw_key": "bad-magic"}
{"raw_value_hex": "$unknown_id", "raw_key": "unknown-id"}
{"raw_value_hex": "$corrupt", "raw_key": "corrupt"}
{"raw_value_hex": "$trailing", "raw_key": "trailing"}
{"raw_value_hex": "$short", "raw_key": "short"}
JSON
check "the bad records are produced" "$avro_produce" --topic "$topic" --schema "$tmp/value.avsc" <"$tmp/bad.jsonl"
check "the last good records are produced" good 7 11

cat >"$tmp/p.yaml" <<YAML
pipeline: avro_dead_letters
stages:
$(avro_source)
  out:
    type: postgres
    inputs: [in]
    dsn: \${PG_DSN}
    table: $table
    create_table: true
    batch: { max_rows: 100, max_wait: 50ms }
    columns:
      id: { from: id, type: bigint, required: true }
      name: { from: name, type: text }
      off: { from: _offset, type: bigint }
    dead_letter: { table: $dlq }
YAML
start_etld
dead() { psql_q "select count(*) from $dlq" 2>/dev/null || echo 0; }
landed() { test "$(rows)/$(dead)" = "10/5"; }
wait_for 60 landed || true
check "the ten good records landed" test "$(rows)" = 10
check "... each once, with their values" \
  test "$(psql_q "select count(distinct id) || ' ' || min(id) || ' ' || max(id) || ' ' || sum(id) from $table where name = 'item ' || id")" = "10 1 11 60"
check "the records after the bad ones kept their offsets" test "$(psql_q "select min(off) from $table where id >= 7")" = 10
check "five dead letters" test "$(dead)" = 5
# reason KEY OFFSET PATTERN: the dead letter of the record keyed KEY has its coordinates, its
# bytes exactly and a reason matching the LIKE PATTERN.
reason() {
  local row
  row=$(psql_q "select topic || ' ' || partition || ' ' || \"offset\" || ' ' || encode(value, 'hex') || ' ' || error
                from $dlq where convert_from(key, 'UTF8') = '$1'")
  [[ -n $row ]] || { echo "no dead letter keyed $1" >&2; return 1; }
  [[ $row == "$topic 0 $2 "* ]] || { echo "dead letter $1: wrong coordinates: $row" >&2; return 1; }
  [[ $(psql_q "select count(*) from $dlq where convert_from(key, 'UTF8') = '$1' and error like '$3'") == 1 ]] ||
    { echo "dead letter $1: reason does not match '$3': $row" >&2; return 1; }
  [[ $(psql_q "select encode(value, 'hex') from $dlq where convert_from(key, 'UTF8') = '$1'") == "$4" ]] ||
    { echo "dead letter $1: bytes changed: $row" >&2; return 1; }
}
check "wrong magic byte: reason, coordinates, bytes" \
  reason bad-magic 5 '%avro: wrong magic byte 0x7b (expected 0%' "$bad_magic"
check "unknown schema id: reason names the id and the registry" \
  reason unknown-id 6 "%avro: schema id 2147483632 not found in the registry at $SCHEMA_REGISTRY_URL%" "$unknown_id"
check "corrupt body: reason names the schema id" \
  reason corrupt 7 "%avro: body does not decode with schema id $schema_id:%" "$corrupt"
check "trailing bytes are a corrupt body" \
  reason trailing 8 "%avro: body does not decode with schema id $schema_id:%trailing%" "$trailing"
check "a record shorter than the header" reason short 9 '%avro:%too short%' "$short"
check "etld runs on" kill -0 "$pid"
stop_etld
finish
