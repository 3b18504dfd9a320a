#!/usr/bin/env bash
# A PostgreSQL table replicated end to end, every piece real: a source cluster with logical WAL
# (scripts/cdc up) -> Debezium's PostgreSQL connector in Kafka Connect standalone (scripts/cdc
# connect-start) -> the broker -> examples/postgres-cdc-replica.yaml (postgres mode: debezium,
# delivery: exactly_once) -> the target table. The source table has an integer key, text,
# numeric(12,2), timestamptz, boolean, nullable and large (TOASTed) columns; 400 rows are there
# before the connector starts (its snapshot, op r), then a stream of transactions inserts,
# updates (key changes too), deletes, and midway adds a column the target maps (tier) and one it
# does not (extra), while etld is SIGKILLed at random points and restarted, and Kafka Connect
# once. At the end the target equals the source exactly (every mapped column, as ordered text
# and by md5) and nothing went to the dead-letter table.
source "$(dirname "$0")/exactly_once_lib.sh"

eval "$("$src/scripts/cdc" up)"
connector="cdc_$run_id" prefix="cdc_$run_id" source_table="customers_$run_id"
table="replica_$run_id" dl="replica_dl_$run_id" group="g_cdc_$run_id"
topic="$prefix.public.$source_table"
export PGTZ=UTC  # both clusters print timestamptz the same way

# Connect's log is in the dev dir, which --drop removes: kept in $tmp for the failure output.
eval "eo_$(declare -f cleanup)"
cleanup() {
  local log=${ETLD_DEV_DIR:-/tmp/etld-dev-$(id -u)}/cdc/connect-$connector/connect.log
  if [[ -f $log ]]; then grep -E "ERROR|WARN" "$log" | tail -n 20 >"$tmp/connect.log" || true; fi
  "$src/scripts/cdc" connect-stop "$connector" --drop >/dev/null 2>&1 || true
  eo_cleanup
}
source_q() { "$src/scripts/cdc" psql -tAc "$1" 2>/dev/null; }

# REPLICA IDENTITY FULL (docs/cdc.md): with the default identity, an update that leaves a large
# (TOASTed) value unchanged carries Debezium's placeholder instead of it; big holds 12.8 kB of
# incompressible text in every tenth row, and the stream's updates never touch it (with DEFAULT
# this test fails).
"$src/scripts/cdc" psql -q -v ON_ERROR_STOP=1 >/dev/null <<SQL
create table $source_table (id integer primary key, name text not null, balance numeric(12,2),
  seen timestamptz, active boolean not null default true, note text, big text);
alter table $source_table replica identity full;
insert into $source_table select i, 'name ' || i, (i * 37 % 100000) / 100.0 - 300,
  '2026-12-06 12:00:00+00'::timestamptz + i * interval '1.000123 second', i % 3 = 0,
  case when i % 4 = 0 then null else 'note ' || i end,
  case when i % 10 = 0 then (select string_agg(md5(i::text || j::text), '') from generate_series(1, 400) j) end
  from generate_series(1, 400) i;
SQL

# The example, with this test's names.
sed -e "s/topics: \[cdc.public.customers\]/topics: [$topic]/" -e "s/group: etld-customers-replica/group: $group/" \
  -e "s/table: customers\$/table: $table/" -e "s/offsets_table: etld_offsets/offsets_table: offsets_$run_id/" \
  -e "s/table: customers_replica_dead_letters/table: $dl/" -e 's/^\( *\)tier: text .*/&\n\1big: text/' \
  "$src/examples/postgres-cdc-replica.yaml" >"$tmp/replica.yaml"
check "the example adapts to this test's names" bash -c "grep -q 'topics: \[$topic\]' '$tmp/replica.yaml' &&
  grep -q 'table: $table\$' '$tmp/replica.yaml' && grep -q 'table: $dl' '$tmp/replica.yaml' && grep -q 'group: $group' '$tmp/replica.yaml' &&
  grep -q '^ *big: text\$' '$tmp/replica.yaml'"
check "the adapted example validates" "$etld" validate "$tmp/replica.yaml"

t0=$(date +%s)
ETLD_CONNECT_PORT=0 "$src/scripts/cdc" connect-start "$connector" "$prefix" "public.$source_table" >/dev/null 2>"$tmp/connect-start.log" ||
  { cat "$tmp/connect-start.log" >&2; exit 1; }
echo "Kafka Connect with Debezium streaming after $(($(date +%s) - t0)) s" >&2

# The stream: transactions of 1-4 changes, ~40 a second, for ~25 s; the schema changes halfway.
python3 - "$source_table" >"$tmp/changes.sql" <<'PY'
import random, sys
t = sys.argv[1]
rng = random.Random(14)
ids, next_id, tier = set(range(1, 401)), 401, False
def val():
    note = "null" if rng.random() < 0.3 else "'n%d it''s'" % rng.randrange(10**6)
    return ("'%s'" % rng.choice(["ada", "bob", "cy", "dé", "e\\f"]), "%d.%02d" % (rng.randrange(-10**6, 10**6), rng.randrange(100)),
            "'2026-%02d-%02d %02d:%02d:%02d.%06d+0%d'" % (rng.randrange(1, 13), rng.randrange(1, 29), rng.randrange(24),
                rng.randrange(60), rng.randrange(60), rng.randrange(10**6), rng.randrange(10)),
            rng.choice(["true", "false"]), note)
for n in range(1000):
    if n == 500:
        print(f"alter table {t} add column tier text;")
        print(f"alter table {t} add column extra integer;")
        tier = True
    print("begin;")
    for _ in range(rng.randrange(1, 5)):
        r = rng.random()
        name, bal, seen, act, note = val()
        extra = f", tier = '{rng.choice(['gold', 'silver'])}', extra = {rng.randrange(100)}" if tier and rng.random() < 0.7 else ""
        if r < 0.35 or not ids:
            cols, vals = "id, name, balance, seen, active, note", f"{next_id}, {name}, {bal}, {seen}, {act}, {note}"
            if tier and rng.random() < 0.5:
                cols, vals = cols + ", tier", vals + ", 'bronze'"
            print(f"insert into {t} ({cols}) values ({vals});")
            ids.add(next_id); next_id += 1
        elif r < 0.75:
            i = rng.choice(sorted(ids))
            print(f"update {t} set name = {name}, balance = {bal}, seen = {seen}, active = {act}, note = {note}{extra} where id = {i};")
        elif r < 0.8:
            i = rng.choice(sorted(ids))  # a key change: Debezium sends d (and its tombstone) + c
            print(f"update {t} set id = {next_id} where id = {i};")
            ids.discard(i); ids.add(next_id); next_id += 1
        else:
            i = rng.choice(sorted(ids))
            print(f"delete from {t} where id = {i};")
            ids.discard(i)
    print("commit;")
    print("select pg_sleep(0.025);")
PY
"$src/scripts/cdc" psql -q -v ON_ERROR_STOP=1 -f "$tmp/changes.sql" >/dev/null 2>"$tmp/source-sql.log" &
writer_pid=$!
bg_pids+=("$writer_pid")

replica_rows() { psql_q "select count(*) from $table" || echo 0; }
for k in 1 2 3; do
  start etld "$tmp/replica.yaml"
  sleep "$(python3 -c "import random; print(2 + random.random() * 5)")"
  streaming=$(kill -0 "$writer_pid" 2>/dev/null && echo yes || echo no)
  kill9 etld
  echo "kill $k: $(replica_rows) rows in the replica, the source still changing: $streaming" >&2
  if ((k == 2)); then
    # Kafka Connect crashes too: restarted, Debezium sends the changes since its last offset
    # flush again (new Kafka records), which etld applies again, in order.
    "$src/scripts/cdc" connect-stop "$connector" --kill 2>/dev/null
    t0=$(date +%s)
    check "Kafka Connect restarts after a SIGKILL" bash -c "ETLD_CONNECT_PORT=0 '$src/scripts/cdc' connect-start \
      '$connector' '$prefix' 'public.$source_table' >/dev/null 2>'$tmp/connect-restart.log'"
    echo "Kafka Connect SIGKILLed and streaming again after $(($(date +%s) - t0)) s" >&2
  fi
done
check "etld was SIGKILLed while the source was still changing" test "$streaming" = yes
start etld "$tmp/replica.yaml"
check "the changes were applied on the source" wait "$writer_pid"
check "the source has the new columns filled" test \
  "$(source_q "select count(*) filter (where tier is not null) > 0 and count(*) filter (where extra is not null) > 0
    and count(*) filter (where length(big) = 12800) > 0 from $source_table")" = t

# Columns etld maps, as text ordered by key; extra is on the source only (not mapped: ignored).
cols="id, name, balance, seen, active, note, tier, big"
dump_source() { "$src/scripts/cdc" psql -tA -c "select $cols from $source_table order by id" >"$tmp/source.txt" 2>/dev/null; }
dump_replica() { "$src/scripts/dev-env" psql -tA -c "select $cols from $table order by id" >"$tmp/replica.txt" 2>/dev/null; }
same() { dump_source && dump_replica && cmp -s "$tmp/source.txt" "$tmp/replica.txt"; }
check "the replica equals the source, every row and column exactly" wait_for 90 same
diff "$tmp/source.txt" "$tmp/replica.txt" | head -n 20 >&2 || true
check "the replica holds as many rows as the source" test "$(wc -l <"$tmp/replica.txt")" = "$(source_q "select count(*) from $source_table")"
check "the replica's checksum is the source's" test \
  "$(source_q "select md5(string_agg(t::text, '|' order by id)) from (select $cols from $source_table) t")" = \
  "$(psql_q "select md5(string_agg(t::text, '|' order by id)) from (select $cols from $table) t")"
dead_letters() { if [[ $(psql_q "select to_regclass('$dl') is not null") == t ]]; then psql_q "select count(*) from $dl"; else echo 0; fi; }
check "no change event went to the dead-letter table" test "$(dead_letters)" = 0
check "every offset was committed with its changes" test "$(psql_q "select count(*) from offsets_$run_id where consumer_group = '$group'")" -ge 1
check "etld exits 0 on SIGTERM" stop etld
finish
