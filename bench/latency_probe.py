#!/usr/bin/env python3
"""bench/latency_probe.py: where a row's latency goes, for the latency tail of docs/performance.md.

    eval "$(scripts/dev-env up)"
    bench/latency_probe.py --rate 60000 [--seconds 30] [--poll stats|count] [--append-time] [--build-dir build]

Runs the latency scenario's pipeline (kafka, 8 partitions, narrow records at a steady rate ->
postgres, batch 10,000, linger 100 ms) once, into a table whose every row records three times:
`ts`, the record's Kafka timestamp (set by the producer); `tx`, the start of the COPY that wrote
it (`now()`, the transaction's start: each plain-insert batch is one autocommit COPY); `seen`, when
PostgreSQL inserted it (`clock_timestamp()`). From them, per row: before the COPY (`tx - ts`: the
producer, the broker, the fetch, the sink's open batch, the wait for the connection) and inside
it (`seen - tx`). Per COPY: its rows, start and the gap since the one before. Per second of the run:
p99, and the CPU each command (etld, java, postgres, kafka_tool, kernel workers) used around the
three slowest seconds against the run's average. It waits for the rows on the statistics counter
(`--poll stats`, as bench/run's latency scenario does now) or as bench/run did before
(`--poll count`: also `count(*)` every 10x its own duration, and back to back from 90 % of the
rows), logging each `count(*)`, so that a tail can be matched to it. PostgreSQL's checkpoints and
the table's autovacuums during the run are counted. `--append-time` stamps records on the broker
instead of the producer. Prints one JSON document.
"""

import argparse
import calendar
import json
import os
import statistics
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from processes import CLK_TCK, Psql, broker_pid, stop_process  # noqa: E402


def cpu_by_pid():
    """(command name, CPU seconds) of every process; kernel workers under one name ("kworker"),
    whose name changes with the work they do."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                head, _, rest = f.read().rpartition(")")
            name = head.partition("(")[2].split("/")[0]
            fields = rest.split()
            out[int(pid)] = (name, (int(fields[11]) + int(fields[12])) / CLK_TCK)
        except (OSError, IndexError, ValueError):
            continue
    return out


class GcSampler(threading.Thread):
    """The broker JVM's garbage collections (`jstat -gc`, every 0.25 s): (wall time, GC seconds so far)."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.samples = []
        self.proc = subprocess.Popen(["jstat", "-gc", str(pid), "250"], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True) if pid else None

    def run(self):
        if not self.proc:
            return
        header = None
        for line in self.proc.stdout:
            cols = line.split()
            if cols and cols[0] == "S0C":
                header = cols
            elif header and len(cols) == len(header):
                self.samples.append((time.time(), float(cols[header.index("GCT")])))

    def stop(self):
        if self.proc:
            self.proc.terminate()

    def pauses(self, t0):
        """(second of the run, ms of GC in that quarter second) for every sample that saw a collection."""
        return [(round(t - t0, 2), round((g - pg) * 1000)) for (pt, pg), (t, g) in zip(self.samples, self.samples[1:])
                if g > pg]


def checkpoint_windows(log_path, t0, t1):
    """PostgreSQL's checkpoints between t0 and t1 (epoch seconds) from its log (log_checkpoints is
    on by default): [start, end] seconds into the run."""
    out, start = [], None
    try:
        with open(log_path, errors="replace") as f:
            for line in f:
                if "checkpoint starting" not in line and "checkpoint complete" not in line:
                    continue
                try:
                    t = calendar.timegm(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S")) + float("0" + line[19:23])
                except ValueError:
                    continue
                if "starting" in line:
                    start = t
                elif start is not None and t >= t0 and start <= t1:
                    out.append([round(start - t0, 1), round(t - t0, 1)])
                    start = None
        if start is not None and start <= t1:
            out.append([round(start - t0, 1), None])
    except OSError:
        pass
    return out


class CpuSampler(threading.Thread):
    """Every 0.5 s, the CPU each command used since the sample before: what ran when rows waited."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples, self.stop = [], threading.Event()

    def run(self):
        before = cpu_by_pid()
        while not self.stop.wait(0.5):
            now = cpu_by_pid()
            use = {}
            for pid, (name, s) in now.items():
                d = s - before[pid][1] if pid in before else 0.0
                if d > 0:
                    use[name] = use.get(name, 0.0) + d
            self.samples.append((time.time(), use))
            before = now


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(p * len(v)))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rate", type=int, required=True, help="records per second")
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--poll", choices=["count", "stats"], default="stats")
    ap.add_argument("--linger-ms", type=int, default=100)
    ap.add_argument("--build-dir", default="build")
    ap.add_argument("--append-time", action="store_true",
                    help="the topic stamps records with the broker's append time (LogAppendTime): the producer's "
                         "share of the latency drops out")
    args = ap.parse_args()
    brokers, dsn = os.environ["KAFKA_BROKERS"], os.environ["PG_DSN"]
    session = Psql(dsn)

    def query(sql):
        return [line.split("|") for line in session.query(sql) if line]

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    etld = os.path.join(root, args.build_dir, "etld")
    kafka_tool = os.path.join(root, args.build_dir, "bench", "kafka_tool")
    run_id = f"{int(time.time())}_{os.getpid()}"
    topic, table = f"probe_{run_id}", f"probe_{run_id}"
    if args.append_time:  # through the benchmark's venv (bench/run makes it for the Python baseline)
        venv_python = os.path.join(os.environ.get("ETLD_CACHE", os.path.expanduser("~/.cache/etld")), "bench-venv",
                                   "bin", "python")
        subprocess.run([venv_python, "-c", (
            "import sys; from confluent_kafka.admin import AdminClient, NewTopic; "
            "a = AdminClient({'bootstrap.servers': sys.argv[1]}); "
            "[f.result() for f in a.create_topics([NewTopic(sys.argv[2], 8, 1, "
            "config={'message.timestamp.type': 'LogAppendTime'})]).values()]"), brokers, topic], check=True)
    else:
        subprocess.run([os.path.join(root, "scripts", "dev-env"), "topic", topic, "8"], check=True,
                       capture_output=True)
    query(f"CREATE TABLE {table} (id bigint, customer text, amount numeric, status text, created_at timestamptz, "
              f"note text, ts timestamptz, tx timestamptz DEFAULT now(), seen timestamptz DEFAULT clock_timestamp())")
    cols = ["id bigint", "customer text", "amount numeric", "status text", "created_at timestamptz", "note text"]
    colyaml = "\n".join(f"      {c.split()[0]}: {{from: {c.split()[0]}, type: {c.split()[1]}}}" for c in cols)
    work = tempfile.mkdtemp(prefix="etld-probe-")  # 0700: the pipeline file holds the DSN
    yaml_path = os.path.join(work, "pipeline.yaml")
    with open(yaml_path, "w") as f:
        f.write(f"""pipeline: probe
threads: 2
log_level: warn
stages:
  in:
    type: kafka
    brokers: {brokers}
    topics: [{topic}]
    group: g_{topic}
    start_from: earliest
  out:
    type: postgres
    inputs: [in]
    dsn: {dsn}
    table: {table}
    max_demand: 20000
    batch: {{max_rows: 10000, max_wait: {args.linger_ms}ms}}
    columns:
{colyaml}
      ts: {{from: _timestamp, type: timestamptz}}
""")
    n = args.rate * args.seconds
    counts = []  # (start, end) of each count(*), epoch seconds
    log_path = os.path.join(work, "etld.log")
    pg_before = query("SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter")[0][0]
    sampler = CpuSampler()
    sampler.start()
    dev_dir = os.environ.get("ETLD_DEV_DIR") or f"/tmp/etld-dev-{os.getuid()}"
    gc = GcSampler(broker_pid())
    gc.start()
    with open(log_path, "w") as lf:
        proc = subprocess.Popen([etld, "run", yaml_path], stdout=lf, stderr=subprocess.STDOUT)
        try:
            subprocess.run([kafka_tool, "produce", brokers, topic, "1", "narrow"], check=True, capture_output=True)
            while int(query(f"SELECT count(*) FROM {table}")[0][0]) < 1:
                time.sleep(0.05)
            producer = subprocess.Popen([kafka_tool, "produce", brokers, topic, str(n), "narrow", str(args.rate)],
                                        stdout=subprocess.DEVNULL)
            next_count = 0.0
            deadline = time.monotonic() + args.seconds * 5 + 120
            while time.monotonic() < deadline:
                ins = int(query(f"SELECT coalesce(sum(n_tup_ins), 0) FROM pg_stat_user_tables "
                                f"WHERE relname = '{table}'")[0][0])
                now = time.monotonic()
                if args.poll == "count" and (ins >= 0.9 * n or now >= next_count):
                    q0, e0 = time.monotonic(), time.time()
                    ins = int(query(f"SELECT count(*) FROM {table}")[0][0])
                    counts.append((e0, time.time()))
                    next_count = time.monotonic() + max(0.05, 10 * (time.monotonic() - q0))
                if ins >= n + 1:
                    break
                time.sleep(0.02)
            producer.wait()
            while int(query(f"SELECT count(*) FROM {table}")[0][0]) < n + 1:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"latency_probe: {table} did not get its {n + 1} rows (etld's log: {log_path})")
                time.sleep(0.2)
        finally:
            stop_process(proc)
            os.remove(yaml_path)  # on failure too: it holds the DSN (the log stays for the error)
    shutil.rmtree(work)
    sampler.stop.set()
    gc.stop()
    t_end = time.time()
    checkpoints = int(query("SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter")[0][0]) - int(pg_before)
    autovac = query(f"SELECT autovacuum_count, autoanalyze_count, extract(epoch FROM last_autovacuum), "
                        f"extract(epoch FROM last_autoanalyze) FROM pg_stat_user_tables WHERE relname = '{table}'")[0]
    rows = query(f"SELECT extract(epoch FROM ts), extract(epoch FROM tx), extract(epoch FROM seen) FROM {table} "
                     f"WHERE seen > (SELECT min(seen) FROM {table})")
    query(f"DROP TABLE {table}")
    ts = [(float(a), float(b), float(c)) for a, b, c in rows]
    total = [(c - a) * 1000 for a, b, c in ts]
    before = [(b - a) * 1000 for a, b, c in ts]
    inside = [(c - b) * 1000 for a, b, c in ts]
    copies, first_ts = {}, {}  # per COPY start: its rows' insertion times; its oldest record's timestamp
    for a, b, c in ts:
        copies.setdefault(b, []).append(c)
        first_ts[b] = min(first_ts.get(b, a), a)
    starts = sorted(copies)
    gaps = [(starts[i] - starts[i - 1]) * 1000 for i in range(1, len(starts))]
    copy_ms = [(max(copies[s]) - s) * 1000 for s in starts]
    t0 = min(a for a, _, _ in ts)
    per_second = {}
    for a, b, c in ts:
        per_second.setdefault(int(a - t0), []).append((c - a) * 1000)
    tail_rows = sorted(ts, key=lambda r: r[2] - r[0])[-max(1, len(ts) // 100):]
    # The COPYs holding the slowest 1 % of rows, and whether a count(*) ran while their rows waited.
    tail_copies = sorted({b for _, b, _ in tail_rows})
    overlapping = sum(1 for b in tail_copies if any(s < b and e > first_ts[b] for s, e in counts))
    slow_seconds = sorted(per_second, key=lambda k: pct(per_second[k], 0.99))[-3:]
    during_slow = {}
    for k in slow_seconds:  # CPU by command in the 0.5 s samples of the slowest seconds and the one before
        for t, use in sampler.samples:
            if t0 + k - 1 <= t <= t0 + k + 1:
                for name, s in use.items():
                    during_slow[name] = during_slow.get(name, 0.0) + s
    typical = {}
    for _, use in sampler.samples:
        for name, s in use.items():
            # The same span as the slow seconds' windows: 2 s (4 samples) around each of them.
            typical[name] = typical.get(name, 0.0) + s / max(1, len(sampler.samples)) * 4 * len(slow_seconds)
    print(json.dumps({
        "rate": args.rate, "seconds": args.seconds, "poll": args.poll, "append_time": args.append_time,
        "rows": len(ts),
        "load_avg": os.getloadavg()[0],
        "p50_ms": pct(total, 0.5), "p99_ms": pct(total, 0.99), "max_ms": max(total),
        "before_copy_p50_ms": pct(before, 0.5), "before_copy_p99_ms": pct(before, 0.99),
        "inside_copy_p50_ms": pct(inside, 0.5), "inside_copy_p99_ms": pct(inside, 0.99),
        "copies": len(starts), "rows_per_copy_median": statistics.median(len(copies[s]) for s in starts),
        "copy_ms_p50": pct(copy_ms, 0.5), "copy_ms_max": max(copy_ms),
        "gap_between_copies_ms_p50": pct(gaps, 0.5), "gap_between_copies_ms_max": max(gaps) if gaps else 0,
        "gaps_over_200ms": sum(1 for g in gaps if g > 200),
        "count_star_runs": len(counts),
        "count_star_ms_max": max(((e - s) * 1000 for s, e in counts), default=0),
        "tail_copies": len(tail_copies), "tail_copies_during_count_star": overlapping,
        "checkpoints": checkpoints, "autovacuums": int(autovac[0] or 0), "autoanalyzes": int(autovac[1] or 0),
        "last_autovacuum_s": float(autovac[2]) - t0 if autovac[2] else None,
        "last_autoanalyze_s": float(autovac[3]) - t0 if autovac[3] else None,
        "slowest_seconds": slow_seconds,
        "checkpoints_s": checkpoint_windows(os.path.join(dev_dir, "pg", "postgres.log"), t0, t_end),
        "broker_gc_ms_at_s": gc.pauses(t0),
        "cpu_s_around_slowest_seconds": {k: round(v, 2) for k, v in sorted(during_slow.items(), key=lambda x: -x[1])[:8]},
        "cpu_s_typical_same_span": {k: round(v, 2) for k, v in sorted(typical.items(), key=lambda x: -x[1])[:8]},
        "p99_by_second_ms": [round(pct(per_second[k], 0.99)) for k in sorted(per_second)],
    }, indent=1))


if __name__ == "__main__":
    main()
