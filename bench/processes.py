"""bench/run's dealings with processes: CPU and RSS from /proc, stopping them, their logs, an
etld's admin endpoint's Prometheus metrics, and the broker's process (for its CPU)."""

import os
import signal
import socket
import subprocess
import sys
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
