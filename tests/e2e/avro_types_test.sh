#!/usr/bin/env bash
# Every Avro type and logical type, produced by the real serializer (confluent-kafka's
# AvroSerializer, which registers the schemas in the dev environment's registry) with Avro keys,
# read by the real binary with format: avro and key_format: avro, lands in PostgreSQL exactly:
# integers at their limits, floats as written, bytes and fixed byte for byte (NUL and 0xff too),
# decimals digit for digit at precision 38, dates, times and timestamps to the microsecond (before
# the epoch too), uuids, enums, arrays, maps, nested records and unions.
source "$(dirname "$0")/avro_lib.sh"
avro_run avt

cat >"$tmp/key.avsc" <<'JSON'
{"type": "record", "name": "OrderKey", "namespace": "etld.test",
 "fields": [{"name": "id", "type": "long"}, {"name": "region", "type": "string"}]}
JSON
cat >"$tmp/value.avsc" <<'JSON'
{"type": "record", "name": "Everything", "namespace": "etld.test", "fields": [
  {"name": "id", "type": "long"},
  {"name": "i", "type": "int"},
  {"name": "l", "type": "long"},
  {"name": "f", "type": "float"},
  {"name": "d", "type": "double"},
  {"name": "b", "type": "boolean"},
  {"name": "s", "type": "string"},
  {"name": "raw", "type": "bytes"},
  {"name": "fx", "type": {"type": "fixed", "name": "Four", "size": 4}},
  {"name": "color", "type": {"type": "enum", "name": "Color", "symbols": ["RED", "GREEN", "BLUE"]}},
  {"name": "tags", "type": {"type": "array", "items": "long"}},
  {"name": "attrs", "type": {"type": "map", "values": "string"}},
  {"name": "address", "type": {"type": "record", "name": "Address", "fields": [
      {"name": "city", "type": "string"}, {"name": "zip", "type": ["null", "int"]}]}},
  {"name": "maybe", "type": ["null", "string"], "default": null},
  {"name": "either", "type": ["null", "long", "string"]},
  {"name": "big", "type": {"type": "bytes", "logicalType": "decimal", "precision": 38, "scale": 18}},
  {"name": "money", "type": {"type": "fixed", "name": "Money", "size": 8, "logicalType": "decimal",
                             "precision": 16, "scale": 2}},
  {"name": "day", "type": {"type": "int", "logicalType": "date"}},
  {"name": "t_ms", "type": {"type": "int", "logicalType": "time-millis"}},
  {"name": "t_us", "type": {"type": "long", "logicalType": "time-micros"}},
  {"name": "ts_ms", "type": {"type": "long", "logicalType": "timestamp-millis"}},
  {"name": "ts_us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
  {"name": "uid", "type": {"type": "string", "logicalType": "uuid"}}
]}
JSON
# Three records: ordinary values, the limits, and the empty and before-the-epoch ones. Bytes are
# JSON strings of code points 0-255 (Avro's JSON encoding of bytes).
python3 - >"$tmp/records.jsonl" <<'PY'
import json
recs = [
  {"key": {"id": 1, "region": "eu"}, "value": {
    "id": 1, "i": 42, "l": 1234567890123, "f": 1.5, "d": 0.1, "b": True, "s": "grüße, \"quoted\"\ttab",
    "raw": "\u0000\u0001\u00ff\u00fe\u0080A", "fx": "\u00de\u00ad\u00be\u00ef", "color": "GREEN",
    "tags": [1, 2, 3], "attrs": {"a": "x", "b": "y"}, "address": {"city": "Lyon", "zip": 69001},
    "maybe": "here", "either": 7, "big": "12345678901234567890.123456789012345678", "money": "1234.50",
    "day": "2026-12-06", "t_ms": "12:34:56.789", "t_us": "12:34:56.789012",
    "ts_ms": "2026-12-06T12:00:00.123Z", "ts_us": "2026-12-06T12:00:00.123456Z",
    "uid": "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"}},
  {"key": {"id": 2, "region": "us"}, "value": {
    "id": 2, "i": -2147483648, "l": 9223372036854775807, "f": -3.25, "d": -1.7976931348623157e308,
    "b": False, "s": "", "raw": "", "fx": "\u0000\u0000\u0000\u0000", "color": "BLUE", "tags": [],
    "attrs": {}, "address": {"city": "", "zip": None}, "maybe": None, "either": "text",
    "big": "-99999999999999999999.999999999999999999", "money": "-0.01", "day": "1969-12-31",
    "t_ms": "00:00:00", "t_us": "23:59:59.999999", "ts_ms": "1969-12-31T23:59:59.999Z",
    "ts_us": "1969-12-31T23:59:59.999999Z", "uid": "00000000-0000-0000-0000-000000000000"}},
  {"key": {"id": 3, "region": "ap"}, "value": {
    "id": 3, "i": 2147483647, "l": -9223372036854775808, "f": 0, "d": 5e-324, "b": True,
    "s": "日本語 ✓", "raw": "\u00ff" * 3, "fx": "\u00ff\u0000\u00ff\u0000", "color": "RED",
    "tags": [-9223372036854775808], "attrs": {"k": "v"}, "address": {"city": "Tokyo", "zip": 0},
    "maybe": "", "either": None, "big": "0.000000000000000001", "money": "99999999999999.99",
    "day": "0001-01-01", "t_ms": "23:59:59.999", "t_us": "00:00:00.000001",
    "ts_ms": "1970-01-01T00:00:00Z", "ts_us": "2262-04-11T23:47:16.854775Z",
    "uid": "ffffffff-ffff-4fff-bfff-ffffffffffff"}},
]
for r in recs:
    print(json.dumps(r))
PY
check "the real serializer produces the records" \
  "$avro_produce" --topic "$topic" --schema "$tmp/value.avsc" --key-schema "$tmp/key.avsc" <"$tmp/records.jsonl"
check "the serializer registered the value schema" \
  curl -sf "$SCHEMA_REGISTRY_URL/subjects/$topic-value/versions/latest" -o /dev/null
check "the serializer registered the key schema" \
  curl -sf "$SCHEMA_REGISTRY_URL/subjects/$topic-key/versions/latest" -o /dev/null

# The table is made here with the natural PostgreSQL types (time columns take the text the sink
# writes for time-millis/micros).
psql_q "create table $table (k jsonb, id bigint primary key, i integer, l bigint, f real,
  d double precision, b boolean, s text, raw bytea, fx bytea, color text, tags jsonb, attrs jsonb,
  address jsonb, city text, maybe text, either text, big numeric, money numeric, day date,
  t_ms time, t_us time, ts_ms timestamptz, ts_us timestamptz, uid uuid)" >/dev/null
cat >"$tmp/p.yaml" <<YAML
pipeline: avro_types
stages:
$(avro_source "  timeout: 5s" "key_format: avro")
  out:
    type: postgres
    inputs: [in]
    dsn: \${PG_DSN}
    table: $table
    batch: { max_rows: 100, max_wait: 50ms }
    columns:
      k: { from: _key, type: jsonb }
      id: { from: id, type: bigint, required: true }
      i: { from: i, type: integer }
      l: { from: l, type: bigint }
      f: { from: f, type: real }
      d: { from: d, type: double precision }
      b: { from: b, type: boolean }
      s: { from: s, type: text }
      raw: { from: raw, type: bytea }
      fx: { from: fx, type: bytea }
      color: { from: color, type: text }
      tags: { from: tags, type: jsonb }
      attrs: { from: attrs, type: jsonb }
      address: { from: address, type: jsonb }
      city: { from: address.city, type: text }
      maybe: { from: maybe, type: text }
      either: { from: either, type: text }
      big: { from: big, type: numeric }
      money: { from: money, type: numeric }
      day: { from: day, type: date }
      t_ms: { from: t_ms, type: text }
      t_us: { from: t_us, type: text }
      ts_ms: { from: ts_ms, type: timestamptz }
      ts_us: { from: ts_us, type: timestamptz }
      uid: { from: uid, type: uuid }
    dead_letter: { table: $dlq }
YAML
start_etld
wait_for 60 rows_are 3 || true
check "all three records landed" test "$(rows)" = 3
check "nothing was dead-lettered" test "$(psql_q "select count(*) from $dlq" 2>/dev/null || echo 0)" = 0

# col ID EXPR WANT: the SQL expression over row ID's columns gives exactly WANT.
col() {
  local got
  got=$(psql_q "select $2 from $table where id = $1")
  [[ $got == "$3" ]] || { echo "row $1: $2 is '$got', expected '$3'" >&2; return 1; }
}
check "avro keys become the key's JSON" col 1 "k = '{\"id\": 1, \"region\": \"eu\"}'::jsonb" t
check "... for every record" col 3 "k->>'region'" ap
check "int" col 1 i 42
check "int minimum" col 2 i -2147483648
check "int maximum" col 3 i 2147483647
check "long" col 1 l 1234567890123
check "long maximum" col 2 l 9223372036854775807
check "long minimum" col 3 l -9223372036854775808
check "float" col 1 "f::text" 1.5
check "negative float" col 2 "f::text" -3.25
check "double 0.1 exactly" col 1 "d = 0.1::float8" t
check "double at its limit" col 2 "d = -1.7976931348623157e308::float8" t
check "smallest double" col 3 "d = 5e-324::float8" t
check "boolean" col 1 "b" t
check "boolean false" col 2 "b" f
check "string with quotes and a tab" col 1 "s = E'grüße, \"quoted\"\\ttab'" t
check "empty string is not null" col 2 "s = ''" t
check "unicode string" col 3 "s" "日本語 ✓"
check "bytes exactly (NUL, 0xff, not UTF-8)" col 1 "encode(raw, 'hex')" 0001fffe8041
check "empty bytes" col 2 "encode(raw, 'hex') || '/' || length(raw)" /0
check "bytes 0xff" col 3 "encode(raw, 'hex')" ffffff
check "fixed" col 1 "encode(fx, 'hex')" deadbeef
check "fixed of zeros" col 2 "encode(fx, 'hex')" 00000000
check "enum symbol" col 1 color GREEN
check "array" col 1 "tags = '[1, 2, 3]'::jsonb" t
check "empty array" col 2 "tags = '[]'::jsonb" t
check "array of the long minimum" col 3 "tags->>0" -9223372036854775808
check "map" col 1 "attrs = '{\"a\": \"x\", \"b\": \"y\"}'::jsonb" t
check "empty map" col 2 "attrs = '{}'::jsonb" t
check "nested record" col 1 "address = '{\"city\": \"Lyon\", \"zip\": 69001}'::jsonb" t
check "nested record with a null union" col 2 "address = '{\"city\": \"\", \"zip\": null}'::jsonb" t
check "a field of a nested record" col 3 city Tokyo
check "nullable union, set" col 1 maybe here
check "nullable union, null" col 2 "maybe is null" t
check "nullable union, empty string" col 3 "maybe = ''" t
check "union of three, long branch" col 1 either 7
check "union of three, string branch" col 2 either text
check "union of three, null" col 3 "either is null" t
check "decimal(38,18) digit for digit" col 1 "big::text" 12345678901234567890.123456789012345678
check "negative decimal(38,18)" col 2 "big::text" -99999999999999999999.999999999999999999
check "tiny decimal(38,18)" col 3 "big::text" 0.000000000000000001
check "fixed decimal keeps its scale" col 1 "money::text" 1234.50
check "negative fixed decimal" col 2 "money::text" -0.01
check "largest fixed decimal(16,2)" col 3 "money::text" 99999999999999.99
check "date" col 1 "day::text" 2026-12-06
check "date before the epoch" col 2 "day::text" 1969-12-31
check "date of year 1" col 3 "day::text" 0001-01-01
check "time-millis" col 1 "t_ms::text" 12:34:56.789
check "time-millis midnight" col 2 "t_ms::text" 00:00:00
check "time-millis last" col 3 "t_ms::text" 23:59:59.999
check "time-micros" col 1 "t_us::text" 12:34:56.789012
check "time-micros last" col 2 "t_us::text" 23:59:59.999999
check "time-micros first" col 3 "t_us::text" 00:00:00.000001
utc="at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US')"
check "timestamp-millis" col 1 "to_char(ts_ms $utc" "2026-12-06 12:00:00.123000"
check "timestamp-millis before the epoch" col 2 "to_char(ts_ms $utc" "1969-12-31 23:59:59.999000"
check "timestamp-millis at the epoch" col 3 "to_char(ts_ms $utc" "1970-01-01 00:00:00.000000"
check "timestamp-micros" col 1 "to_char(ts_us $utc" "2026-12-06 12:00:00.123456"
check "timestamp-micros before the epoch" col 2 "to_char(ts_us $utc" "1969-12-31 23:59:59.999999"
check "timestamp-micros far ahead" col 3 "to_char(ts_us $utc" "2262-04-11 23:47:16.854775"
check "uuid" col 1 "uid::text" 6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b
check "nil uuid" col 2 "uid::text" 00000000-0000-0000-0000-000000000000
check "max uuid" col 3 "uid::text" ffffffff-ffff-4fff-bfff-ffffffffffff

stop_etld
finish
