"""Quiet screens, full log files: where raymix, Ray and Python warnings write.

:func:`setup_logging` (called by the CLI and the experiment scripts) makes the screen show only raymix's
own lines — progress (:mod:`raymix.progress`), results, errors — and each warning that matters
(:class:`~raymix.errors.RaymixWarning`) once, in raymix's words.  Everything else goes to the log file
(``<out>/raymix.log``): raymix's lines and per-round progress, Ray / Ray Tune / Ray Data messages (their
INFO lines, the token-authentication notice, trial tracebacks) and other libraries' warnings.
``verbose=True`` also lets Ray's and other libraries' messages through to the screen.

Ray installs its own console handlers on the ``ray`` and ``ray.data`` loggers (which do not propagate),
some only when a module is first imported; :func:`tame_ray_loggers` hides those handlers' output and
attaches the log file to those loggers.  :func:`ensure_ray` calls it after ``ray.init``, so handlers that
appear late are covered too.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from raymix.errors import RaymixWarning

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_FILE = "raymix.log"


class _State:
    configured: bool = False  # library use without setup_logging: leave Ray's output alone
    verbose: bool = False
    file_handler: logging.Handler | None = None
    console_handler: logging.Handler | None = None
    warn_sink: Callable[[str], None] | None = None
    native_redirected: bool = False
    warned: set[str] = set()


class _RayConsoleFilter(logging.Filter):
    """On Ray's own console handlers: nothing passes (Ray's records propagate to the root logger instead, whose
    handlers are the log file and, with --verbose, the screen)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return False


class _FileFilter(logging.Filter):
    """DEBUG records of raymix only (per-round progress); INFO and above from everyone."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.INFO or record.name.startswith("raymix")


class _NotRaymix(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith("raymix")  # raymix's lines reach the screen through raymix.progress


_RAY_FILTER = _RayConsoleFilter()


def setup_logging(log_file: str | os.PathLike | None = None, *, verbose: bool = False) -> Path | None:
    """Route logs: the screen gets raymix's lines (and, if ``verbose``, everyone's INFO); ``log_file``
    (appended to, parents created) gets everything.  Safe to call again (e.g. once ``--out`` is known)."""
    _State.configured = True
    _State.verbose = verbose
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    logging.getLogger("raymix").setLevel(logging.DEBUG)
    path = None
    if log_file is not None:
        path = Path(log_file).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        if _State.file_handler is not None:
            root.removeHandler(_State.file_handler)
            _State.file_handler.close()
        fh = logging.FileHandler(path, encoding="utf-8")
        fh.setLevel(logging.DEBUG)
        fh.setFormatter(logging.Formatter(LOG_FORMAT))
        fh.addFilter(_FileFilter())
        root.addHandler(fh)
        _State.file_handler = fh
    if verbose and _State.console_handler is None:
        ch = logging.StreamHandler(sys.stderr)
        ch.setLevel(logging.INFO)
        ch.setFormatter(logging.Formatter(LOG_FORMAT))
        ch.addFilter(_NotRaymix())
        root.addHandler(ch)
        _State.console_handler = ch
    elif not verbose and _State.console_handler is not None:
        root.removeHandler(_State.console_handler)
        _State.console_handler = None
    if _State.file_handler is None and not verbose and not root.handlers:
        # Without a file, Python's last-resort handler would print third-party WARNINGs to the screen.
        root.addHandler(logging.NullHandler())
    warnings.showwarning = _showwarning
    warnings.simplefilter("always", RaymixWarning)  # de-duplicated by message in _showwarning
    os.environ.setdefault("RAY_DEDUP_LOGS", "1")
    tame_ray_loggers()
    return path


def capture_native_stderr(log_file: str | os.PathLike) -> None:
    """Send what other code writes to file descriptor 2 — Ray's C++ core (e.g. its actor warnings), the
    processes ``ray.init`` starts — to ``log_file``, and keep the screen for Python's ``sys.stderr``, which
    becomes a copy of the original descriptor.  For command-line processes only (``raymix.cli.main`` does it
    when run as the ``raymix`` command, not when called with an argument list, e.g. from tests)."""
    if _State.native_redirected:
        return
    sys.stderr.flush()
    screen = os.fdopen(os.dup(2), "w", buffering=1, encoding=getattr(sys.stderr, "encoding", None) or "utf-8",
                       errors="replace")
    fd = os.open(log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stderr = screen
    _State.native_redirected = True


def set_warning_sink(sink: Callable[[str], None] | None) -> None:
    """Where raymix warnings are shown (an ``ExperimentProgress.warn`` keeps them above the bars)."""
    _State.warn_sink = sink


def drop_warning_sink(sink: Callable[[str], None]) -> None:
    """Stop routing warnings to ``sink`` (a closed progress display) if it is the current one."""
    if _State.warn_sink == sink:
        _State.warn_sink = None


def show_warning(msg: str) -> None:
    """Show a raymix warning once (per process) on the screen and in the log file."""
    if msg in _State.warned:
        return
    _State.warned.add(msg)
    if _State.warn_sink is not None:
        _State.warn_sink(msg)
        return
    logging.getLogger("raymix").warning(msg)
    print(f"raymix: warning: {msg}", file=sys.stderr, flush=True)


def _showwarning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    if issubclass(category, RaymixWarning):
        show_warning(str(message))
        return
    text = warnings.formatwarning(message, category, filename, lineno, line)
    logging.getLogger("py.warnings").warning(text.rstrip())


def tame_ray_loggers() -> None:
    """Silence Ray's own console handlers and let Ray's loggers propagate to the root logger (log file; the
    screen with --verbose).  Propagation also matters when ``ray.init(configure_logging=False)`` clears the
    ``ray`` logger's handlers: a non-propagating logger without handlers falls back to Python's last-resort
    handler, which is how Ray's token-authentication notice reached the screen."""
    if not _State.configured:
        return
    for name, lg in list(logging.root.manager.loggerDict.items()):
        if not isinstance(lg, logging.Logger) or not (name == "ray" or name.startswith("ray.")):
            continue
        for h in lg.handlers:
            if isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler) \
                    and _RAY_FILTER not in h.filters:
                h.addFilter(_RAY_FILTER)
        lg.propagate = True
