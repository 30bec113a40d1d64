"""Simulator figures: how well LearnParams recovers A*, and final summed loss of Aioli vs baselines.

Run: ``.venv/bin/python benchmarks/sim_figures.py [--seeds 5]``.  Pure numpy, a few seconds on a CPU.
"""

from __future__ import annotations

import argparse

import numpy as np

from raymix.analysis.similarity import similarity
from raymix.estimators import learn_params, run_aioli
from raymix.sim import SimBackend

SETTINGS = {  # preset: (k, delta) as in the paper's Tables 13–18 for m = 2, 3
    "two_group_interacting": (4, 0.128),
    "three_group": (4, 0.288),
}


def recovery(name: str, seed: int, k: int, delta: float, rounds: int = 20) -> tuple[float, float]:
    """Mean sim(Â, A*) over the LearnParams rounds of a uniform run (full and diagonal Â)."""
    b = SimBackend.from_preset(name, seed=seed)
    m, eps = b.m, 0.75
    round_steps = b.total_steps // rounds
    seg = int(round(delta * round_steps)) // (m * k)
    rng = np.random.default_rng(seed)
    full, diag = [], []
    for _ in range(rounds):
        A_star = b.A_star()
        acc, _ = learn_params(b, k, eps, rng, seg)
        full.append(similarity(acc.solve(), A_star))
        diag.append(similarity(acc.solve(diagonal=True), A_star))
        b.train(round_steps - seg * m * k, np.full(m, 1.0 / m))
    return float(np.mean(full)), float(np.mean(diag))


def final_loss(name: str, seed: int, k: int, delta: float, method: str) -> float:
    """Summed final test loss of one run of ``method`` on the preset."""
    b = SimBackend.from_preset(name, seed=seed)
    if method == "stratified":
        b.train(b.total_steps, np.full(b.m, 1.0 / b.m))
    else:
        kw = {"aioli": {}, "aioli_diagonal": {"diagonal": True}, "aioli_ema0.5": {"gamma": 0.5}}[method]
        run_aioli(b, rounds=20, k=k, delta=delta, eps=0.75, eta=0.3, seed=seed, **kw)
    return float(b.evaluate("test").sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=5)
    args = ap.parse_args()
    seeds = range(args.seeds)
    for name, (k, delta) in SETTINGS.items():
        rec = np.array([recovery(name, s, k, delta) for s in seeds])
        print(f"{name}: sim(Â, A*) full {rec[:, 0].mean():.3f} ± {rec[:, 0].std():.3f}, "
              f"diagonal {rec[:, 1].mean():.3f} ± {rec[:, 1].std():.3f}  (mean over 20 rounds, {args.seeds} seeds)")
        for method in ("stratified", "aioli", "aioli_diagonal", "aioli_ema0.5"):
            losses = np.array([final_loss(name, s, k, delta, method) for s in seeds])
            print(f"  {method:<15} summed final test loss {losses.mean():.4f} ± {losses.std():.4f}")


if __name__ == "__main__":
    main()
