"""Live progress of long work: a tqdm bar on a terminal, plain periodic lines when output is not a terminal.

:func:`progress_bar` makes one bar (``raymix data build`` uses it per stage); :class:`ExperimentProgress`
follows an experiment (``raymix run`` / ``compare`` / ``demo``, ``experiments/``): an outer bar over the
(method, seed) items and, per phase of a method, a bar of training steps done over the steps the phase's
runs must train, with the run that reported last, its step and its current p.  Executors feed it:
:class:`~raymix.methods.driver.LocalExecutor` after each round in-process, and
:class:`~raymix.tune.executor.TuneExecutor` from a Tune ``Callback`` whose ``on_trial_result`` runs on the
driver (the trainable reports its own ``step`` every round, so trials in other processes or on other
nodes show up as they train).

Terminal handling is tqdm's.  When the stream is not a terminal (CI, ``> log``), tqdm writes into a
:class:`LineStream`, which turns each redraw into one plain line; redraws are then at most one per
``interval`` seconds (default 30 s, ``RAYMIX_PROGRESS_INTERVAL`` overrides) plus the final state, and the
bar itself is left out of the line.

Warnings that matter (raymix's own :class:`~raymix.errors.RaymixWarning`) go through :meth:`warn`, which
prints each distinct message once, above the bars.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Sequence
from typing import IO, Any

from tqdm import tqdm

log = logging.getLogger("raymix")

#: bar layout when output is a terminal / when it is not (no bar: one plain line per redraw)
TTY_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} {unit} [{elapsed}<{remaining}{postfix}]"
LINE_FORMAT = "{desc}: {n_fmt}/{total_fmt} {unit} ({percentage:.0f}%) [elapsed {elapsed}, ETA {remaining}{postfix}]"


class LineStream:
    """A file-like object for tqdm that writes each redraw as one plain line (no ``\\r``, no escapes)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.last = ""

    def write(self, s: str) -> int:
        for part in s.replace("\r", "\n").split("\n"):
            part = part.strip()
            if part and not part.startswith("\x1b") and part != self.last:  # close() redraws the last state
                self.stream.write(part + "\n")
                self.last = part
        return len(s)

    def flush(self) -> None:
        self.stream.flush()


def is_terminal(stream: IO[str] | None) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except ValueError:  # a closed stream
        return False


def _interval() -> float:
    try:
        return float(os.environ.get("RAYMIX_PROGRESS_INTERVAL", "30"))
    except ValueError:
        return 30.0


def progress_bar(total: float | None, desc: str, *, unit: str = "steps", stream: IO[str] | None = None,
                 position: int | None = None, leave: bool = True, interval: float | None = None,
                 enabled: bool = True) -> tqdm:
    """A tqdm bar on ``stream`` (default stderr): a live bar on a terminal, plain periodic lines otherwise."""
    stream = sys.stderr if stream is None else stream
    if is_terminal(stream):
        return tqdm(total=total, desc=desc, unit=unit, file=stream, position=position, leave=leave,
                    dynamic_ncols=True, bar_format=TTY_FORMAT, disable=not enabled, mininterval=0.2)
    every = _interval() if interval is None else interval
    return tqdm(total=total, desc=desc, unit=unit, file=LineStream(stream), leave=True, ncols=200,
                bar_format=LINE_FORMAT, disable=not enabled, mininterval=every, maxinterval=max(every, 10.0),
                miniters=0)


def format_mixture(p: Sequence[float] | None) -> str:
    return "" if p is None else "[" + " ".join(f"{float(x):.2f}" for x in p) + "]"


class ExperimentProgress:
    """Progress of an experiment: (method, seed) items, each a sequence of phases of runs.

    Call order: ``start(n_items)`` → per item ``item_started`` → per phase ``phase_started`` →
    ``run_round``… → ``phase_finished`` → ``item_finished`` → finally ``close``.  ``write`` and ``warn``
    print lines without breaking the bars.  Every call is safe on a disabled or closed object.
    """

    def __init__(self, stream: IO[str] | None = None, *, enabled: bool = True, interval: float | None = None,
                 prefix: str = "") -> None:
        self.stream = sys.stderr if stream is None else stream
        self.enabled = enabled
        self.tty = is_terminal(self.stream)
        self.interval = interval
        self.prefix = prefix
        self.outer: tqdm | None = None
        self.bar: tqdm | None = None
        self.method = ""
        self.label = ""
        self.groups: tuple[str, ...] = ()
        self.runs: dict[str, tuple[int, int]] = {}  # run → (start step, stop step)
        self.done: dict[str, int] = {}
        self.warned: set[str] = set()
        self._phase = ""
        self._t_phase = 0.0

    # -- messages ------------------------------------------------------------------------------------
    def write(self, msg: str) -> None:
        """A line above the bars (and in the log file)."""
        log.info(msg)
        self._emit(msg)

    def warn(self, msg: str) -> None:
        """A warning that matters, printed once per distinct message."""
        if msg in self.warned:
            return
        self.warned.add(msg)
        log.warning(msg)
        self._emit(f"raymix: warning: {msg}")

    def _emit(self, msg: str) -> None:
        if not self.enabled:
            return
        if self.tty:
            tqdm.write(msg, file=self.stream)
        else:
            self.stream.write(msg + "\n")
            self.stream.flush()

    # -- experiment ----------------------------------------------------------------------------------
    def start(self, n_items: int, desc: str = "experiment") -> None:
        """``n_items`` (method, seed) pairs to run.  The outer bar is shown on terminals only (non-terminal
        output gets one line per finished item instead)."""
        if self.enabled and self.tty:
            self.outer = progress_bar(n_items, f"{self.prefix}{desc}", unit="method-seeds", stream=self.stream,
                                      position=0, leave=True)

    def item_started(self, label: str, seed: int, groups: Sequence[str]) -> None:
        self.method = label
        self.label = f"{label} seed={seed}"
        self.groups = tuple(groups)

    def item_finished(self, msg: str | None = None) -> None:
        if msg:
            self.write(msg)
        if self.outer is not None:
            self.outer.update(1)

    # -- phases (fed by executors) ----------------------------------------------------------------------
    def phase_started(self, phase: str, runs: Sequence[tuple[str, int, int]]) -> None:
        """``runs``: (name, start step, stop step) of each run the phase trains."""
        self.phase_finished()
        self.runs = {name: (int(a), int(b)) for name, a, b in runs}
        self.done = {name: 0 for name in self.runs}
        self._phase = phase
        self._t_phase = time.perf_counter()
        total = sum(b - a for a, b in self.runs.values())
        n = len(self.runs)
        desc = f"{self.prefix}[{self.label}] {phase}" + (f" ({n} runs)" if n > 1 else "")
        log.info("%s: %d run(s), %d steps", desc, n, total)
        if total == 0:  # hand-off runs whose resumed runs already reached their stop step: evaluation only
            self._emit(f"{desc}: {', '.join(self.runs)} starts where the run it resumes stopped (nothing to train; evaluating)")
        elif self.enabled:
            self.bar = progress_bar(total, desc, unit="steps", stream=self.stream,
                                    position=1 if self.outer is not None else None, leave=False,
                                    interval=self.interval)

    def run_round(self, run: str, step: int, mixture: Sequence[float] | None = None) -> None:
        """A run of the current phase reached ``step`` with proportions ``mixture``."""
        if run not in self.runs:
            return
        start, stop = self.runs[run]
        self.done[run] = max(self.done[run], min(int(step), stop) - start)
        p = format_mixture(mixture)
        log.debug("[%s] %s step %d/%d p=%s", self.label, run, step, stop, p)
        if self.bar is not None:
            post = f"{run} {int(step)}/{stop}" + (f" p={p}" if p else "")
            if len(self.runs) > 1:  # sweeps report once per run: say how many have finished
                finished = sum(self.done[r] >= b - a for r, (a, b) in self.runs.items())
                post = f"{finished}/{len(self.runs)} runs done, {post}"
            self.bar.set_postfix_str(post, refresh=False)
            self.bar.update(sum(self.done.values()) - self.bar.n)
        if self.outer is not None:
            self.outer.refresh()  # its elapsed time

    def phase_finished(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        if self._phase:
            log.info("[%s] phase %s finished in %.1fs", self.label, self._phase, time.perf_counter() - self._t_phase)
            self._phase = ""

    def close(self) -> None:
        from raymix.logs import drop_warning_sink

        drop_warning_sink(self.warn)
        self.phase_finished()
        if self.outer is not None:
            self.outer.close()
            self.outer = None

    def __enter__(self) -> ExperimentProgress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def console_progress(out: str | os.PathLike, *, verbose: bool = False, capture_native: bool = False
                     ) -> ExperimentProgress:
    """What a command-line run needs before :func:`raymix.experiment.run_experiment`: logging routed to
    ``<out>/raymix.log`` (quiet screen unless ``verbose``; see :mod:`raymix.logs`), raymix warnings shown
    once above the bars, and the live progress display on stderr."""
    from pathlib import Path

    from raymix.logs import LOG_FILE, capture_native_stderr, set_warning_sink, setup_logging

    log_file = setup_logging(Path(out) / LOG_FILE, verbose=verbose)
    if capture_native and not verbose and log_file is not None:
        capture_native_stderr(log_file)
    progress = ExperimentProgress(sys.stderr)
    set_warning_sink(progress.warn)
    return progress
