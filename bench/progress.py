"""The progress line of bench/run: on a terminal, one line of stderr redrawn in place (\\r, then
spaces over the rest) saying the scenario i of n, the repetition, the contender, the rows loaded
so far where the bench polls a table, the seconds since the scenario began, and the case. Shown
only when stderr is a terminal and neither CI nor NO_PROGRESS is set to a non-empty value: the
rule of etld and scripts/dev-env too (docs/operations.md, "Progress on a terminal"). stdout never
sees it."""

import os
import sys
import threading
import time


def progress_wanted(stream):
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    return tty and not os.environ.get("CI") and not os.environ.get("NO_PROGRESS")


class Progress:
    def __init__(self, stream=None, enabled=None):
        self.stream = stream or sys.stderr
        self.enabled = progress_wanted(self.stream) if enabled is None else enabled
        self.scenario = self.case = ""
        self.step = ""
        self.rows = ""
        self.since = time.monotonic()
        self.drawn = 0
        self.last_draw = 0.0
        self.lock = threading.Lock()
        self.ticker = None

    def start_scenario(self, i, n, name):
        self.scenario = f"scenario {i}/{n} {name}"
        self.case = self.step = self.rows = ""
        self.since = time.monotonic()
        self.draw()

    def set_step(self, case=None, rep=None, reps=None, contender=None):
        """What runs now: any of the case, repetition rep (0-based) of reps, and the contender."""
        parts = []
        if rep is not None:
            parts.append(f"repetition {rep + 1}/{reps}" if reps else f"repetition {rep + 1}")
        if contender:
            parts.append(contender)
        self.step = ", ".join(parts)
        self.case = case or ""
        self.rows = ""
        self.draw()

    def loaded(self, rows, of):
        """Rows loaded so far where the bench polls a table; redrawn at most 5 times a second."""
        self.rows = f"{rows:,}/{of:,} rows"
        if time.monotonic() - self.last_draw >= 0.2:
            self.draw()

    def line(self):
        """The most telling first, as a narrow terminal cuts the end: the case is last."""
        parts = [p for p in (self.scenario, self.step, self.rows) if p]
        text = f"bench: {', '.join(parts)}, {time.monotonic() - self.since:.0f}s"
        return text + (f" | {self.case}" if self.case else "")

    def tick(self):
        """Redraws every second, so that the seconds go on during a long step without polls."""
        while True:
            time.sleep(1)
            with self.lock:
                if self.drawn:  # not between a clear() and the line written after it
                    self._draw()

    def draw(self):
        if not self.enabled:
            return
        if self.ticker is None:
            self.ticker = threading.Thread(target=self.tick, daemon=True)
            self.ticker.start()
        with self.lock:
            self._draw()

    def _draw(self):
        self.last_draw = time.monotonic()
        try:
            columns = os.get_terminal_size(self.stream.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
        width = columns - 1 if columns > 1 else 79  # a terminal that does not say its size: 80
        text = "".join(c if c.isprintable() else "?" for c in self.line())[:width]
        self.stream.write("\r" + text + " " * max(0, self.drawn - len(text)))
        self.stream.flush()
        self.drawn = len(text)

    def clear(self):
        """Erases the line, before anything else is written to stderr."""
        with self.lock:
            self._clear()

    def _clear(self):
        if self.enabled and self.drawn:
            self.stream.write("\r" + " " * self.drawn + "\r")
            self.stream.flush()
            self.drawn = 0


# The one progress line of a bench run: bench/run draws it, processes.log clears it around messages.
PROGRESS = Progress()
