"""Speed of the mixing-law simulator: Aioli's reference loop and whole methods, no Ray.

The simulator exists so that every method runs end to end in well under a second; this prints how long
that takes here (it used to be a ``< 1.0 s`` assertion in tests/test_sim.py, which a busy machine can
break without anything being wrong).  Each case is timed ``--repeats`` times in this one invocation;
the median, min and max are printed side by side.

    python benchmarks/bench_sim_speed.py --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import time

from raymix.estimators import run_aioli
from raymix.methods import MixingProblem, get_method, run_method
from raymix.methods.driver import BackendSpec, LocalExecutor
from raymix.sim import SimBackend


def _aioli_loop() -> None:
    b = SimBackend.from_preset("three_group", seed=0, total_steps=2000)
    run_aioli(b, rounds=20, k=2, delta=0.3, eps=0.75, eta=0.2)


def _method(name: str):
    def go() -> None:
        prob = MixingProblem(groups=("github", "c4"), total_steps=5000, seed=0)
        run_method(get_method(name), prob, LocalExecutor(BackendSpec()))
    return go


CASES = {
    "run_aioli three_group S=2000 T=20 k=2": _aioli_loop,
    "method stratified (S=5000)": _method("stratified"),
    "method aioli (S=5000)": _method("aioli"),
    "method grid_search (S=5000, 9 sweep runs)": _method("grid_search"),
    "method skill_it (S=5000)": _method("skill_it"),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args(argv)
    for fn in CASES.values():  # warm-up: imports and first-call costs are not what is measured
        fn()
    print(f"| case | median s | min s | max s |  (repeats={args.repeats})\n|---|---|---|---|")
    for label, fn in CASES.items():
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        print(f"| {label} | {statistics.median(times):.3f} | {min(times):.3f} | {max(times):.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
