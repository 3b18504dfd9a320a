"""bench/run's dealings with processes: CPU and RSS from /proc, stopping them, their logs, an
etld's admin endpoint's Prometheus metrics, the broker's process (for its CPU), and one psql
session kept open for polling."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from progress import PROGRESS


def log(msg):
    PROGRESS.clear()  # the progress line on a terminal is redrawn below the message
    print(f"bench: {msg}", file=sys.stderr, flush=True)
    PROGRESS.draw()


def stop_process(proc, timeout=60):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def tail(path, n=15):
    try:
        with open(path) as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def free_port():
    """A TCP port free now on 127.0.0.1, for an etld's --admin-address."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port, timeout=2.0):
    """The samples of GET /metrics as (name, labels text, value); [] while the endpoint is not up."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as r:
            text = r.read().decode()
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, _, labels = head.partition("{")
        try:
            out.append((name, labels.rstrip("}"), float(value)))
        except ValueError:
            continue
    return out


def metric_sum(samples, name, label=""):
    """Sum of a metric's series whose labels contain `label` (e.g. 'stage="in"')."""
    return sum(v for n, labels, v in samples if n == name and label in labels)


def metric_count(samples, name):
    return sum(1 for n, _, _ in samples if n == name)


def broker_pid():
    """The dev environment's Kafka broker (scripts/dev-env keeps its pid), or None."""
    path = os.path.join(os.environ.get("ETLD_DEV_DIR") or f"/tmp/etld-dev-{os.getuid()}", "kafka", "kafka.pid")
    try:
        with open(path) as f:
            pid = int(f.read().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    """User + system CPU of a live process, from /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return 0.0


def rss_kib(pid, field="VmRSS"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Psql:
    """One psql session kept open for polling (application_name bench_poll, so that its own CPU is
    never counted as the contender's backend CPU)."""

    def __init__(self, dsn):
        self.dsn = dsn
        self.open()

    def open(self):
        env = dict(os.environ, PGAPPNAME="bench_poll")
        self.p = subprocess.Popen(["psql", self.dsn, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=0"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                  env=env)

    def query(self, sql):
        try:
            return self.query_once(sql)
        except (OSError, RuntimeError):  # the server restarted under us: one new session, one retry
            self.p.kill()
            self.p.wait()
            time.sleep(1)
            self.open()
            return self.query_once(sql)

    def query_once(self, sql):
        self.p.stdin.write(sql.rstrip().rstrip(";") + ";\n\\echo __bench_end__\n")
        self.p.stdin.flush()
        out = []
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError("psql session ended")
            line = line.rstrip("\n")
            if line == "__bench_end__":
                return out
            out.append(line)

    def scalar(self, sql):
        out = self.query(sql)
        return out[0] if out else None

    def close(self):
        self.p.stdin.close()
        self.p.wait()
