"""The paper's experiments at CPU scale and at paper scale (see experiments/README.md)."""

from __future__ import annotations

from pathlib import Path


def print_and_save(text: str, out: str | None) -> None:
    """Print a script's markdown table and, with ``--out``, also write it (with a final newline) to that file."""
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text + "\n")
    print(text)
