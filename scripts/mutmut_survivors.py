"""Print the names of the mutants mutmut recorded as survived, one per line, to re-run them after new tests.

    .venv/bin/mutmut run --max-children 2 $(.venv/bin/python scripts/mutmut_survivors.py raymix/methods/policies.py)

mutmut keeps a survivor's verdict until the function it mutates changes, so a test added later is not tried on
it; naming the survivors re-runs exactly them.  Arguments are source files (default: every mutated file).
``--counts`` prints killed / timeout / survived / not checked per file instead.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

#: mutmut's exit codes per mutant: 0 = survived, 1 = killed, -24 / 24 = timeout (SIGXCPU), None = not checked
STATUS = {0: "survived", 1: "killed", -24: "timeout", 24: "timeout", None: "not checked"}


def meta_files(paths: list[str], root: Path) -> list[Path]:
    if not paths:
        return sorted((root / "mutants").rglob("*.py.meta"))
    return [root / "mutants" / f"{p}.meta" for p in paths]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", help="source files, e.g. raymix/methods/policies.py (default: all)")
    ap.add_argument("--counts", action="store_true", help="print the verdict counts per file instead")
    ap.add_argument("--root", default=".", help="the project root holding mutants/ (default: .)")
    args = ap.parse_args(argv)
    files = meta_files(args.files, Path(args.root))
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        print(f"no mutmut results for {missing}; run `mutmut run` first (from the project root)", file=sys.stderr)
        return 2
    for f in files:
        codes = json.loads(f.read_text())["exit_code_by_key"]
        if args.counts:
            c = collections.Counter(STATUS.get(v, f"exit {v}") for v in codes.values())
            print(f"{f.relative_to(Path(args.root) / 'mutants').as_posix()[:-5]}: {dict(sorted(c.items()))}")
        else:
            for name, code in codes.items():
                if code == 0:
                    print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
