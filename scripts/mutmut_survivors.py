"""Print the names of the mutants mutmut recorded as survived, one per line, to re-run them after new tests.

    .venv/bin/mutmut run --max-children 2 $(.venv/bin/python scripts/mutmut_survivors.py raymix/methods/policies.py)

mutmut keeps a survivor's verdict until the function it mutates changes; naming the survivors re-runs exactly
them.  But mutmut chooses each mutant's tests from coverage statistics that may predate the new tests, so a
re-run by name may not try them (for the laws it did not; docs/TESTING.md).  ``--against TESTS...`` does: it runs those pytest arguments in
``mutants/`` once per survivor, with mutmut's trampoline switched to it (``MUTANT_UNDER_TEST``), and prints
``killed``/``survived`` per mutant and a summary (exit 1 if any survived).

Arguments are source files (default: every mutated file).  ``--counts`` prints killed / timeout / survived /
not checked per file instead.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
from pathlib import Path

#: mutmut's exit codes per mutant: 0 = survived, 1 = killed, -24 / 24 = timeout (SIGXCPU), None = not checked
STATUS = {0: "survived", 1: "killed", -24: "timeout", 24: "timeout", None: "not checked"}


def meta_files(paths: list[str], root: Path) -> list[Path]:
    if not paths:
        return sorted((root / "mutants").rglob("*.py.meta"))
    return [root / "mutants" / f"{p}.meta" for p in paths]


def survivors(meta: Path) -> list[str]:
    """Names of the mutants one ``.meta`` file records as survived."""
    return [name for name, code in json.loads(meta.read_text())["exit_code_by_key"].items() if code == 0]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="*", help="source files, e.g. raymix/methods/policies.py (default: all)")
    ap.add_argument("--counts", action="store_true", help="print the verdict counts per file instead")
    ap.add_argument("--root", default=".", help="the project root holding mutants/ (default: .)")
    ap.add_argument("--against", nargs=argparse.REMAINDER, metavar="PYTEST_ARGS",
                    help="run these pytest arguments under each survivor (last option on the line)")
    args = ap.parse_args(argv)
    files = meta_files(args.files, Path(args.root))
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        print(f"no mutmut results for {missing}; run `mutmut run` first (from the project root)", file=sys.stderr)
        return 2
    if args.against:
        return against([n for f in files for n in survivors(f)], args.against, Path(args.root) / "mutants")
    for f in files:
        if args.counts:
            codes = json.loads(f.read_text())["exit_code_by_key"]
            c = collections.Counter(STATUS.get(v, f"exit {v}") for v in codes.values())
            print(f"{f.relative_to(Path(args.root) / 'mutants').as_posix()[:-5]}: {dict(sorted(c.items()))}")
        else:
            for name in survivors(f):
                print(name)
    return 0


def against(names: list[str], pytest_args: list[str], mutants: Path) -> int:
    """Run ``pytest pytest_args`` in ``mutants`` under each mutant of ``names``; 1 if any survives."""
    left = []
    for name in names:
        env = {**os.environ, "MUTANT_UNDER_TEST": name}
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *pytest_args],
                             cwd=mutants, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if run.returncode not in (0, 1):  # 2–5: interrupted, internal or usage error, no tests collected
            print(f"pytest {' '.join(pytest_args)} exited {run.returncode} under {name}; check the arguments "
                  "(run them in mutants/ by hand)", file=sys.stderr)
            return 2
        verdict = "survived" if run.returncode == 0 else "killed"
        print(f"{verdict} {name}", flush=True)
        if verdict == "survived":
            left.append(name)
    print(f"{len(names) - len(left)} of {len(names)} killed by {' '.join(pytest_args)}")
    return 1 if left else 0


if __name__ == "__main__":
    sys.exit(main())
