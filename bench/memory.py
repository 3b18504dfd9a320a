"""bench/run's memory scenario: memory as a figure, at the default settings (kafka -> postgres,
no option that bounds memory set).

1. Bytes of RSS per record in flight: etld idle on an empty topic (partitions assigned, sink
   connected), then the table locked (ACCESS EXCLUSIVE in an open transaction, so the sink's COPY
   waits) and a backlog produced: the sink's credits, the source's buffer and librdkafka's prefetch
   fill. Records in flight from the admin endpoint (the source's in-flight window, what it buffers,
   librdkafka's prefetch queue), RSS from /proc; (RSS full - RSS idle) / records in flight. Then the
   lock goes and every record must arrive.
2. Peak RSS while loading backlogs of growing size (wide records): it must not grow with the
   backlog, so the peak of the largest is what a 10 GB backlog takes with the default caps."""

import json
import os
import statistics
import subprocess
import threading
import time
import uuid

from processes import free_port, log, metric_count, metric_sum, rss_kib, scrape, stop_process

S = "memory"
STATS_MS = 500  # librdkafka's statistics (the prefetch gauge) every 0.5 s instead of 5 s


def pipeline(bench, topic, table, shape, group):
    cols = "\n".join(f"      {c}: {{from: {c}, type: {t}}}" for c, t in bench.columns(shape))
    return f"""pipeline: bench_memory
log_level: warn
stages:
  in:
    type: kafka
    brokers: {bench.brokers}
    topics: [{topic}]
    group: {group}
    start_from: earliest
    librdkafka: {{statistics.interval.ms: "{STATS_MS}"}}
  out:
    type: postgres
    inputs: [in]
    dsn: {bench.dsn}
    table: {table}
    columns:
{cols}
"""


def new_topic(bench, tag):
    name = f"bench_{tag}_{uuid.uuid4().hex[:6]}_{bench.run_id}"
    subprocess.run([bench.dev_env, "topic", name, "8"], check=True, capture_output=True)
    return name


def produce(bench, topic, n, shape):
    p = subprocess.run([bench.bin["kafka_tool"], "produce", bench.brokers, topic, str(n), shape], capture_output=True,
                       text=True, check=True)
    return json.loads(p.stdout.strip().splitlines()[-1])


def in_flight(samples):
    """Records the process holds: emitted and unsettled, buffered in the source, in librdkafka's queue."""
    return (metric_sum(samples, "etld_kafka_partition_in_flight") + metric_sum(samples, "etld_kafka_partition_buffered")
            + metric_sum(samples, "etld_kafka_partition_prefetched"))


def in_flight_once(bench, shape, n):
    topic, table = new_topic(bench, f"mem_{shape}"), f"bench_mem_{shape}_{bench.run_id}"
    bench.create_table(table, shape, False)
    y = bench.write(f"{table}.yaml", pipeline(bench, topic, table, shape, f"g_mem_{uuid.uuid4().hex[:8]}"))
    port, logfile = free_port(), os.path.join(bench.work, f"{table}.log")
    locker = None
    with open(logfile, "w") as lf:
        proc = subprocess.Popen([bench.bin["etld"], "run", y, "--admin-address", f"127.0.0.1:{port}"], stdout=lf,
                                stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while metric_sum(scrape(port), "etld_kafka_assigned_partitions") < 8:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"memory: etld did not get the topic's 8 partitions in 60 s: {logfile}")
            time.sleep(0.2)
        time.sleep(2)  # settled: connected, assigned, fetching nothing
        idle = statistics.median(sample_rss(proc.pid, 5))
        # A session of its own holds the lock (bench.psql polls); ACCESS EXCLUSIVE stops the COPY.
        locker = type(bench.psql)(bench.dsn)
        locker.query("BEGIN")
        locker.query(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        produced = produce(bench, topic, n, shape)
        # Full when the count of records held stops moving over 3 s (six statistics intervals).
        history, deadline, samples = [], time.monotonic() + 90, []
        while time.monotonic() < deadline:
            samples = scrape(port)
            history.append((in_flight(samples), rss_kib(proc.pid)))
            recent = [h for h, _ in history[-6:]]
            if len(recent) == 6 and metric_count(samples, "etld_kafka_partition_prefetched") == 8 and \
                    min(recent) > 0 and max(recent) <= 1.01 * min(recent):
                break
            time.sleep(0.5)
        else:
            raise RuntimeError(f"memory: the records in flight did not settle in 90 s: {history[-6:]}")
        held = statistics.median(h for h, _ in history[-6:])
        full = statistics.median(r for _, r in history[-6:])
        parts = dict(
            sink=metric_sum(samples, "etld_kafka_partition_in_flight"),
            source=metric_sum(samples, "etld_kafka_partition_buffered"),
            librdkafka=metric_sum(samples, "etld_kafka_partition_prefetched"),
            librdkafka_bytes=metric_sum(samples, "etld_kafka_partition_prefetched_bytes"),
            demand=metric_sum(samples, "etld_stage_outstanding_demand"))
        locker.query("COMMIT")
        bench.wait_rows(table, n, proc, time.monotonic(), 300, logfile)  # nothing lost
    finally:
        if locker:
            locker.close()
        stop_process(proc)
        bench.drop_table(table)
    return dict(idle_kib=idle, full_kib=full, held=held, bytes_per_record=produced["bytes_per_record"], **parts)


def sample_rss(pid, k):
    out = []
    for _ in range(k):
        out.append(rss_kib(pid))
        time.sleep(0.2)
    return out


def backlog_once(bench, n):
    topic, table = new_topic(bench, "backlog"), f"bench_backlog_{bench.run_id}"
    t0 = time.monotonic()
    produced = produce(bench, topic, n, "wide")
    log(f"memory: produced {n} wide records ({n * produced['bytes_per_record'] / 1e9:.2f} GB) in "
        f"{time.monotonic() - t0:.1f}s")
    bench.create_table(table, "wide", False)
    y = bench.write(f"{table}.yaml", pipeline(bench, topic, table, "wide", f"g_backlog_{uuid.uuid4().hex[:8]}"))
    logfile = os.path.join(bench.work, f"{table}.log")
    with open(logfile, "w") as lf:
        t0 = time.monotonic()
        proc = subprocess.Popen([bench.bin["etld"], "run", y], stdout=lf, stderr=subprocess.STDOUT)
    samples, done = [], threading.Event()

    def sample():  # RSS every 0.1 s while the poller waits for the rows
        while not done.is_set():
            samples.append((time.monotonic() - t0, rss_kib(proc.pid)))
            done.wait(0.1)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        seconds, _ = bench.wait_rows(table, n, proc, t0, 900, logfile)
        peak = rss_kib(proc.pid, "VmHWM")
    finally:
        done.set()
        sampler.join()
        stop_process(proc)
        bench.drop_table(table)
    # Once the caps are full (after the first quarter), does RSS still climb? Last quarter / second.
    q = [v for _, v in samples if v > 0]
    k = max(1, len(q) // 4)
    growth = statistics.median(q[-k:]) / statistics.median(q[k:2 * k]) if len(q) >= 8 else None
    return dict(peak_kib=peak, seconds=seconds, gb=n * produced["bytes_per_record"] / 1e9, growth=growth)


def run(bench):
    res = bench.res
    # Enough to fill the caps (28,200 events at the defaults; librdkafka keeps nothing for a paused partition).
    shapes = [("narrow", 60_000)] if bench.quick else [("narrow", 300_000), ("wide", 100_000)]
    full_mib = {}
    for rep in range(bench.reps(2, 1)):
        for shape, n in shapes if rep % 2 == 0 else shapes[::-1]:
            r = in_flight_once(bench, shape, n)
            case = f"{shape} records ({r['bytes_per_record']} B), sink stopped"
            per_record = (r["full_kib"] - r["idle_kib"]) * 1024 / r["held"]
            res.add(S, case, "etld", rep, "RSS idle", r["idle_kib"] / 1024, "MiB")
            res.add(S, case, "etld", rep, "RSS caps full", r["full_kib"] / 1024, "MiB")
            res.add(S, case, "etld", rep, "records in flight", r["held"], "records",
                    **{f"held_by_{part}": r[part] for part in ["sink", "source", "librdkafka"]})
            res.add(S, case, "etld", rep, "RSS bytes/record", per_record, "B")
            full_mib.setdefault(shape, []).append(r["full_kib"] / 1024)
            log(f"memory: {shape}: idle {r['idle_kib'] / 1024:.1f} MiB, caps full {r['full_kib'] / 1024:.1f} MiB, "
                f"{r['held']:.0f} records in flight (sink {r['sink']:.0f}, source {r['source']:.0f}, librdkafka "
                f"{r['librdkafka']:.0f} = {r['librdkafka_bytes'] / 2**20:.1f} MiB): {per_record:.0f} B/record")
    for shape, _ in shapes:
        case = next(c for c in unique_cases(res) if c.startswith(shape + " records"))
        res.ratio(S, f"RSS bytes per record in flight, {case} (the sink's credit and the source's buffer full; "
                     "librdkafka keeps nothing for a paused partition), default settings",
                  res.values(S, case, "etld", "RSS bytes/record"))
    # Backlogs of growing size (wide records, ~1.1 kB): the peak must not follow the backlog.
    # Quick too starts past the caps (0.1 GB peaked as high as 1 and 2 GB), or the peak would follow the backlog.
    sizes = [0.1, 0.2] if bench.quick else [0.1, 0.5, 1.0]
    if os.environ.get("ETLD_BENCH_BACKLOG_GB"):  # e.g. 0.1,1,2: other sizes, by hand
        sizes = [float(v) for v in os.environ["ETLD_BENCH_BACKLOG_GB"].split(",")]
    peaks = {}
    for size in sizes:
        n = int(size * 1e9 / 1100)
        r = backlog_once(bench, n)
        case = f"backlog {size:g} GB"
        res.add(S, case, "etld", 0, "peak RSS", r["peak_kib"] / 1024, "MiB", gb=round(r["gb"], 3))
        res.add(S, case, "etld", 0, "rows/s", n / r["seconds"], "rows/s")
        if r["growth"]:
            res.add(S, case, "etld", 0, "RSS last/2nd quarter", r["growth"], "ratio")
        peaks[size] = r["peak_kib"] / 1024
        log(f"memory: backlog {r['gb']:.2f} GB: peak RSS {peaks[size]:.1f} MiB, {n / r['seconds']:,.0f} rows/s, RSS "
            f"last/2nd quarter {r['growth'] or 0:.3f}")
    lo, hi = sizes[0], sizes[-1]
    res.ratio(S, f"peak RSS loading a {hi:g} GB backlog / a {lo:g} GB one (wide records, defaults)",
              [peaks[hi] / peaks[lo]], 1.25, higher_is_better=False)  # one load's peak varies by about 10 %
    res.ratio(S, f"RSS while loading the {hi:g} GB backlog, last quarter / second quarter (still growing once "
                 "the caps are full?)", res.values(S, f"backlog {hi:g} GB", "etld", "RSS last/2nd quarter"), 1.05,
              higher_is_better=False)
    full_mib = {shape: statistics.median(v) for shape, v in full_mib.items()}
    stopped = ", ".join(f"{shape} {v:.0f} MiB" for shape, v in full_mib.items())
    res.ratio(S, f"peak RSS for a 10 GB backlog at the default caps, MiB: the largest peak over {lo:g}..{hi:g} GB "
                 f"of wide records (it does not grow with the backlog); RSS with every cap full (sink stopped): "
                 f"{stopped}",
              [max(peaks.values())])
    res.notes.append("memory: peak RSS by backlog: " + ", ".join(f"{s:g} GB {p:.1f} MiB" for s, p in peaks.items())
                     + "; RSS with every cap full (sink stopped): "
                     + ", ".join(f"{s} {m:.1f} MiB" for s, m in full_mib.items()))
    res.write_scenario(S, "RSS caps full", "MiB", "Memory: RSS idle and with every cap full (sink stopped)")


def unique_cases(res):
    seen = []
    for r in res.rows:
        if r["scenario"] == S and r["case"] not in seen:
            seen.append(r["case"])
    return seen
