"""bench/run's scale scenario: one etld process against two etld processes in one consumer group,
the same topic (8 partitions, narrow records), a fresh table each, repetitions alternating;
seconds from the start until every row is committed, and CPU per row of etld, of the PostgreSQL
backends and of the broker (the per-core costs docs/scaling.md builds on)."""

import os
import statistics
import subprocess
import time
import uuid

from processes import broker_pid, cpu_seconds, free_port, log, metric_sum, scrape, stop_process, tail

S = "scale"
ONE, TWO = "1 etld process", "2 etld processes, one group"


def run(bench):
    n = bench.rows()
    case = f"narrow insert, {n:,} records, 8 partitions"
    broker = broker_pid()
    if broker is None:
        bench.res.notes.append("scale: the broker's pid (scripts/dev-env) not found: its CPU is not measured")
    # The broker's side of producing the records (a single broker, replication factor 1), when this
    # scenario is the first to need the topic.
    produce_cpu = cpu_seconds(broker) if broker and ("narrow", n) not in bench.topics else None
    topic = bench.topic("narrow", n)
    if produce_cpu is not None:
        bench.res.add(S, case, "broker, producing the topic", 0, "cpu_s/Mrow",
                      (cpu_seconds(broker) - produce_cpu) * 1e6 / n, "s/Mrow")
    for rep in range(bench.reps(3, 1)):
        for contender in [ONE, TWO] if rep % 2 == 0 else [TWO, ONE]:
            r = once(bench, 1 if contender == ONE else 2, topic, n, broker)
            res = bench.res
            res.add(S, case, contender, rep, "rows/s", n / r["seconds"], "rows/s", rows=n)
            res.add(S, case, contender, rep, "cpu_s/Mrow", r["cpu_s"] * 1e6 / n, "s/Mrow")
            res.add(S, case, f"{contender}: postgres backends", rep, "cpu_s/Mrow", r["pg_cpu_s"] * 1e6 / n, "s/Mrow")
            if r["broker_cpu_s"] is not None:
                res.add(S, case, f"{contender}: broker", rep, "cpu_s/Mrow", r["broker_cpu_s"] * 1e6 / n, "s/Mrow")
            # What a row costs PostgreSQL's disk: WAL (this server runs with full_page_writes off) and table.
            res.add(S, case, f"{contender}: PostgreSQL", rep, "WAL B/row", r["wal_bytes"] / n, "B")
            res.add(S, case, f"{contender}: PostgreSQL", rep, "table B/row", r["table_bytes"] / n, "B")
            if contender == TWO:
                res.add(S, case, contender, rep, "busier share", r["busier_share"], "ratio")
        log(f"scale: repetition {rep + 1} done")
    res = bench.res
    res.ratio(S, f"{case}: {TWO} / {ONE}, rows/s", res.paired(S, (case, TWO), (case, ONE), "rows/s"))
    res.ratio(S, f"{case}: {TWO} / {ONE}, etld CPU s per row",
              res.paired(S, (case, TWO), (case, ONE), "cpu_s/Mrow"), higher_is_better=False)

    def med(contender, metric="cpu_s/Mrow"):
        v = res.values(S, case, contender, metric)
        return statistics.median(v) if v else float("nan")

    load = os.getloadavg()[0]
    res.notes.append(
        f"scale: {os.cpu_count()} CPUs for etld, the broker and PostgreSQL together (load average {load:.1f} at "
        f"the end): a second etld process can only take CPU the others leave. CPU µs per row, medians: etld "
        f"{med(ONE):.2f} (1 process) and {med(TWO):.2f} (2, summed); PostgreSQL backends "
        f"{med(ONE + ': postgres backends'):.2f} and {med(TWO + ': postgres backends'):.2f}; broker "
        f"{med(ONE + ': broker'):.2f} and {med(TWO + ': broker'):.2f} serving the consumers (and "
        f"{med('broker, producing the topic'):.2f} taking the records from the producer); the busier of the 2 processes moved "
        f"{med(TWO, 'busier share'):.2f} of the records; PostgreSQL wrote {med(ONE + ': PostgreSQL', 'WAL B/row'):.0f} "
        f"B of WAL (full_page_writes off) and {med(ONE + ': PostgreSQL', 'table B/row'):.0f} B of table per row")
    res.write_scenario(S, "rows/s", "rows/s", "One etld process against two in one consumer group: rows/s")


def once(bench, processes, topic, n, broker):
    """`processes` etld processes, one pipeline file, one consumer group, into a fresh table: seconds
    until every record is in it once, and the CPU spent by etld, the backends and the broker."""
    tag = f"scale{processes}"
    table = f"bench_{tag}_{bench.run_id}"
    bench.create_table(table, "narrow", False)
    group = f"g_{tag}_{uuid.uuid4().hex[:8]}"
    y = bench.write(f"{table}.yaml", bench.etld_yaml(topic, group, table, "narrow"))
    ports = [free_port() for _ in range(processes)]
    logs = [os.path.join(bench.work, f"{table}_{i}.log") for i in range(processes)]
    procs = []
    broker_cpu0 = cpu_seconds(broker) if broker else None
    lsn0 = bench.psql.scalar("SELECT pg_current_wal_lsn()")
    try:
        t0 = time.monotonic()
        for i in range(processes):
            # ETLD_INSTANCE: each process its own static group member id (docs/connectors/kafka.md).
            env = dict(os.environ, ETLD_INSTANCE=f"p{i}")
            with open(logs[i], "w") as lf:
                procs.append(subprocess.Popen([bench.bin["etld"], "run", y, "--admin-address", f"127.0.0.1:{ports[i]}"],
                                              stdout=lf, stderr=subprocess.STDOUT, env=env))
        seconds, _ = bench.wait_rows(table, n, procs[-1], t0, 600, logs[-1])
        cpu = sum(cpu_seconds(p.pid) for p in procs)
        pg_cpu = bench.backend_cpu()
        broker_cpu = cpu_seconds(broker) - broker_cpu0 if broker else None
        wal = float(bench.psql.scalar(f"SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '{lsn0}')"))
        moved = [metric_sum(scrape(port), "etld_stage_events_out_total", 'stage="in"') for port in ports]
        for i, p in enumerate(procs):
            if p.poll() is not None:
                raise RuntimeError(f"scale: etld process {i} exited ({p.returncode}): {tail(logs[i])}")
    finally:
        for p in procs:
            stop_process(p)
    try:
        total, distinct, size = map(int, bench.psql.scalar(
            f"SELECT count(*), count(DISTINCT id), pg_total_relation_size('{table}') FROM {table}").split("|"))
    finally:
        bench.drop_table(table)
    if distinct != n:
        raise RuntimeError(f"scale: {distinct} distinct ids in {table}, {n} produced")
    if total != n:
        bench.res.notes.append(f"scale: {processes} processes wrote {total - n} rows twice (at-least-once, a "
                               "rebalance during the load)")
    share = max(moved) / sum(moved) if sum(moved) > 0 else 0.0
    return dict(seconds=seconds, cpu_s=cpu, pg_cpu_s=pg_cpu, broker_cpu_s=broker_cpu, busier_share=share,
                wal_bytes=wal, table_bytes=size)
