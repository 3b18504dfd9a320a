#!/usr/bin/env bash
# Mode debezium under delivery: exactly_once through the real binary: a stream of hand-written
# Debezium change events (snapshot reads, inserts, updates, deletes followed by their tombstones,
# half of them in Kafka Connect's schema/payload wrapper, a few records that are no change event)
# flows into a 2-partition topic while etld is SIGKILLed at random moments and restarted.
# Afterwards the table equals the one the events describe, row for row; a trigger proves that no
# change was applied twice (no (id, lsn) written twice) and the dead letters are exactly the bad
# records, once each.
source "$(dirname "$0")/exactly_once_lib.sh"

events=12000 kills=6
topic="dbz_$run_id" table="dbz_$run_id"
"$src/scripts/dev-env" topic "$topic" 2 >/dev/null

psql_q "create table $table (id bigint primary key, email text, n bigint, lsn bigint);
        create table ${table}_applied (id bigint, lsn bigint);
        create function ${table}_f() returns trigger language plpgsql as \$\$ begin
          insert into ${table}_applied values (new.id, new.lsn); return new; end \$\$;
        create trigger ${table}_t after insert or update on $table for each row execute function ${table}_f();" >/dev/null
cat >"$tmp/dbz.yaml" <<YAML
pipeline: dbz
stages:
  in:
    type: kafka
    brokers: \${KAFKA_BROKERS}
    topics: [$topic]
    group: g_$run_id
    revoke_timeout: 3s
    librdkafka: { group.instance.id: "dbz-1", session.timeout.ms: "6000", heartbeat.interval.ms: "500" }
  out:
    type: postgres
    inputs: [in]
    dsn: \${PG_DSN}
    table: $table
    mode: debezium
    key: [id]
    delivery: exactly_once
    offsets_table: offsets_$run_id
    batch: { max_rows: 500, max_wait: 20ms }
    columns:
      id: bigint
      email: text
      n: bigint
      lsn: { from: _source.lsn, type: bigint }
YAML
check "the pipeline validates against the database" "$etld" validate --against-db "$tmp/dbz.yaml"

# The events (KEY<TAB>VALUE lines, NULL a tombstone) on stdout, at ~1500 a second; the table they
# leave (id|email|n, by id) in $tmp/expected, the number of records and of bad ones in $tmp/counts.
python3 -u - "$events" "$tmp" <<'PY' | "$src/scripts/dev-env" produce --keyed --tombstones "$topic" 2>"$tmp/producer.log" &
import json, random, sys, time
events, tmp = int(sys.argv[1]), sys.argv[2]
rng = random.Random(14)
rows, lsn, records, bad = {}, 1000, 0, 0
def emit(key, value):
    global records
    records += 1
    print(json.dumps({"id": key}) + "\t" + value)
    if records % 150 == 0:
        sys.stdout.flush()
        time.sleep(0.1)
for i in range(events):
    lsn += rng.randint(1, 50)
    source = {"version": "2.7.0", "connector": "postgresql", "name": "srv", "db": "app", "table": "customers",
              "lsn": lsn, "ts_ms": 1700000000000 + i}
    if i % 997 == 500:  # not a change event: a dead letter
        bad += 1
        emit(rng.randint(1, 300), json.dumps({"id": 0, "email": "not a change event"}))
        continue
    k = rng.randint(1, 300)
    before = rows.get(k)
    if before is None:
        op, after = ("r" if i < 200 else "c"), {"id": k, "email": f"{k}@x", "n": i}
    elif rng.random() < 0.2:
        op, after = "d", None
    else:
        op, after = "u", {"id": k, "email": f"{k}.{i}@x", "n": i}
    env = {"before": before, "after": after, "source": source, "op": op, "ts_ms": 1700000000000 + i}
    if i % 2:
        env = {"schema": {"type": "struct", "name": "srv.app.customers.Envelope", "optional": False}, "payload": env}
    emit(k, json.dumps(env))
    if op == "d":
        del rows[k]
        emit(k, "NULL")  # the tombstone
    else:
        rows[k] = after
with open(f"{tmp}/expected", "w") as f:
    for k in sorted(rows):
        f.write(f"{k}|{rows[k]['email']}|{rows[k]['n']}\n")
with open(f"{tmp}/counts", "w") as f:
    f.write(f"{records} {bad}\n")
PY
producer_pid=$!
bg_pids+=("$producer_pid")

for k in $(seq 1 "$kills"); do
  start dbz "$tmp/dbz.yaml"
  sleep "$(python3 -c "import random; print(random.choice([0.3, 0.8]) + random.random() * 1.5)")"
  kill9 dbz
  echo "kill $k: $(psql_q "select count(*) from ${table}_applied") rows applied" >&2
done
wait "$producer_pid"
read -r records bad <"$tmp/counts"
start dbz "$tmp/dbz.yaml"
committed() { [[ $(psql_q "select coalesce(sum(next_offset), 0) from offsets_$run_id where consumer_group = 'g_$run_id'") == "$records" ]]; }
check "every record's offset was committed ($records records)" wait_for 120 committed
psql_q "select id || '|' || email || '|' || n from $table order by id" >"$tmp/actual"
check "the table equals the one the events describe after $kills SIGKILLs" diff "$tmp/expected" "$tmp/actual"
check "the table is not empty" test -s "$tmp/actual"
check "no change was applied twice" test "$(psql_q "select count(*) from (select 1 from ${table}_applied group by id, lsn having count(*) > 1) d")" = 0
check "the $bad bad records are dead letters, once each" test "$(psql_q "select count(*) || '/' || count(distinct \"offset\" || ':' || \"partition\") from ${table}_dead_letters")" = "$bad/$bad"
check "each dead letter says why" test "$(psql_q "select count(*) from ${table}_dead_letters where error = 'not a Debezium change event: no ''op'' field'")" = "$bad"
check "the run exits 0 on SIGTERM" stop dbz
finish
