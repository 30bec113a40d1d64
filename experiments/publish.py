"""Copy an experiment's results (not its checkpoints) into the repository and render its report.

A CPU-scale experiment writes everything under its ``--out`` (per (method, seed) results, Tune folders with
checkpoints of hundreds of MB, logs).  What is committed under ``experiments/results/<setting>/<table>`` is the
part a reader needs: ``results/*.json``, ``experiment.json``, ``provenance.json`` (every command that grew
the folder), ``raymix.log``, and the report rendered from them (``report.md``, tidy CSVs, plots).  The
report's "seeds" column says how many seeds each row holds, so a table still growing is never presented as
complete.

::

    python -m experiments.publish /work/runs/gh_c4-table2 experiments/results/gh_c4/table2
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections import Counter
from pathlib import Path

from raymix.errors import DataError

#: what is copied from an experiment's --out (everything else — tune/, mlruns/ — stays behind)
KEEP = ("experiment.json", "provenance.json", "raymix.log")


def publish(src: Path, dst: Path) -> Counter:
    from raymix.report import load_results, write_report

    results = sorted((src / "results").glob("*.json")) if (src / "results").is_dir() else []
    if not (src / "experiment.json").is_file() or not results:
        raise DataError(f"{str(src)!r} holds no finished results (experiment.json and results/*.json)")
    (dst / "results").mkdir(parents=True, exist_ok=True)
    for f in results:
        shutil.copy2(f, dst / "results" / f.name)
    for name in KEEP:
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)
    write_report(dst)
    return Counter(r.method for r in load_results(dst))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", help="the experiment's --out")
    ap.add_argument("dst", help="the folder under experiments/results/")
    args = ap.parse_args(argv)
    seeds = publish(Path(args.src), Path(args.dst))
    print(f"{args.dst}: " + ", ".join(f"{m} ({n} seed{'s' if n > 1 else ''})" for m, n in seeds.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
