"""Hand-applied mutants of the LMO core: each must turn the tests red (a quick check without mutmut).

Each entry is one edit taken from mutmut's survivor list (docs/TESTING.md); the script copies the package
and the tests to a scratch folder, applies the edit, runs the tests, and prints KILLED or SURVIVED.

    .venv/bin/python scripts/hand_mutants.py core       # laws and solvers: tests/test_solvers.py tests/test_laws.py
    .venv/bin/python scripts/hand_mutants.py methods    # raymix/methods: tests/methods (fast ones)
    .venv/bin/python scripts/hand_mutants.py core tests/test_laws.py   # a set against other tests
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

SRC = pathlib.Path(__file__).resolve().parents[1]
#: (file, text, replacement).  Left out as equivalent: ``u - css / k > 0`` → ``>= 0`` in project_to_simplex.
CORE = [
 ("raymix/solvers.py", "u - css / k > 0", "u + css / k > 0"),
 ("raymix/solvers.py", "v.size < 1", "v.size <= 1"),
 ("raymix/solvers.py", "z = z - np.max(z)", "z = z + np.max(z)"),
 ("raymix/solvers.py", "p * (g - np.dot(p, g))", "p * (g + np.dot(p, g))"),
 ("raymix/solvers.py", "p0 / p0.sum(), 1e-12, None", "p0 / p0.sum(), 1.000000000001, None"),
 ("raymix/solvers.py", "np.any(p0 < 0)", "np.any(p0 <= 0)"),
 ("raymix/solvers.py", "not isinstance(m, (int, np.integer)) or isinstance(m, bool)", "not isinstance(m, (int, np.integer)) and isinstance(m, bool)"),
 ("raymix/solvers.py", "n_restarts < 0:", "n_restarts <= 0:"),
 ("raymix/solvers.py", "_square_matrix(A, \"greedy_optimum's interaction matrix A\")", "_square_matrix(A, None)"),
 ("raymix/solvers.py", "return w / w.sum()", "return w * w.sum()"),
 ("raymix/laws/dynamic.py", "P_t @ self.A_.T + self.intercept_[None, :]", "P_t @ self.A_.T - self.intercept_[None, :]"),
 ("raymix/laws/dynamic.py", "w = self._current_losses(L_t) * np.exp(-self.intercept_)", "w = self._current_losses(L_t) * np.exp(+self.intercept_)"),
 ("raymix/laws/dynamic.py", "return -(w * np.exp(-A @ p)) @ A", "return +(w * np.exp(-A @ p)) @ A"),
 ("raymix/laws/dynamic.py", "grad=grad, n_restarts=2", "grad=None, n_restarts=2"),
 ("raymix/laws/dynamic.py", "np.exp(-self.A_ @ p - self.intercept_)", "np.exp(-self.A_ @ p + self.intercept_)"),
 ("raymix/laws/dynamic.py", "simplex=True)[0]", "simplex=False)[0]"),
 ("raymix/laws/dynamic.py", "if np.any(L <= 0):", "if np.any(L <= 1):"),
 ("raymix/laws/dynamic.py", "_RANK_RTOL * max(sv.max(), 1e-300)", "_RANK_RTOL / max(sv.max(), 1e-300)"),
 ("raymix/laws/dynamic.py", "_RANK_RTOL * max(sv.max(), 1e-300)", "_RANK_RTOL * max(sv.max(), 1.0)"),
 ("raymix/laws/dynamic.py", "if self.fit_intercept and np.allclose", "if self.fit_intercept or np.allclose"),
 ("raymix/laws/dynamic.py", 'as_matrix("P_t", P_t, n_cols=m)', 'as_matrix("P_t", P_t)'),
 ("raymix/laws/dynamic.py", 'n_cols=P_t.shape[1], n_rows=P_t.shape[0])', 'n_cols=P_t.shape[1])'),
 ("raymix/laws/dynamic.py", 'self._check_losses("L_t", L_t)', 'self._check_losses(None, L_t)'),
 ("raymix/laws/base.py", "fitted[a] = v.tolist() if isinstance(v, np.ndarray) else v", "fitted[a] = v"),
 ("raymix/laws/base.py", "np.asarray(v, dtype=float) if isinstance(v, list) else v", "np.asarray(v, dtype=float)"),
 ("raymix/laws/base.py", 'got = state.get("law") if isinstance(state, dict) else state', "got = None"),
 ("raymix/laws/base.py", "            if hasattr(self, a):\n                delattr(self, a)\n", ""),
]

#: What a method decides: a mutant here makes it choose, resume or report the wrong thing.
METHODS = [
 ("raymix/methods/sweeps.py", "kept[int(np.argmin(L.mean(axis=1)))]", "kept[int(np.argmax(L.mean(axis=1)))]"),
 ("raymix/methods/sweeps.py", "ok = np.isfinite(L).all(axis=1)", "ok = np.isfinite(L).any(axis=1)"),
 ("raymix/methods/sweeps.py", "p = np.asarray(law.optimal_mixture(), dtype=float)", "p = np.full(problem.m, 1.0 / problem.m)"),
 ("raymix/methods/sweeps.py", "cand[int(np.argmin(model.predict(cand)))]", "cand[int(np.argmax(model.predict(cand)))]"),
 ("raymix/methods/sweeps.py", 'np.allclose(r.spec.tags["mixture"], p, atol=1e-9)', 'np.allclose(r.spec.tags["mixture"], p, atol=1.0)'),
 ("raymix/methods/sweeps.py", "return final_run(problem, p, truncated_run=match.spec.name)", "return final_run(problem, p)"),
 ("raymix/methods/pruned.py", "done = [r for r in results if not r.pruned]\n    if not done:", "done = list(results)\n    if not done:"),
 ("raymix/methods/pruned.py", "best = min(done, key=lambda r: float(np.mean(r.val_loss)))", "best = max(done, key=lambda r: float(np.mean(r.val_loss)))"),
 ("raymix/methods/pruned.py", "p = np.asarray(law.optimal_mixture(), dtype=float)", "p = np.full(problem.m, 1.0 / problem.m)"),
 ("raymix/methods/pruned.py", "study.tell(t, float(np.mean(r.val_loss)))", "study.tell(t, -float(np.mean(r.val_loss)))"),
 ("raymix/methods/schedules.py", "np.isfinite(v) and v <= cut", "np.isfinite(v) and v >= cut"),
 ("raymix/methods/schedules.py", "names = sorted(scores, key=lambda k: scores[k])", "names = sorted(scores, key=lambda k: -scores[k])"),
 ("raymix/methods/schedules.py", "depth = sorted((len(r.history) for r in results), reverse=True)", "depth = sorted((len(r.history) for r in results))"),
 ("raymix/methods/population.py", "best = min(results, key=lambda r: float(np.mean(r.val_loss)))", "best = max(results, key=lambda r: float(np.mean(r.val_loss)))"),
 ("raymix/methods/population.py", "p_last = np.asarray(best.history[-1].mixture", "p_last = np.asarray(best.history[0].mixture"),
 ("raymix/methods/policies.py", 'if config.start == "uniform" or config.init_mixture is None:', "if config.init_mixture is None:"),
 ("raymix/methods/policies.py", "stats = backend.train(plan.end - backend.step, mixture=p)", "stats = backend.train(plan.end - backend.step, mixture=self.p_init)"),
 ("raymix/methods/policies.py", "return acc.solve(diagonal=cfg.diagonal)", "return acc.solve(diagonal=not cfg.diagonal)"),
 ("raymix/methods/policies.py", "stats = backend.train(int(cfg.init_steps) - backend.step, mixture=self.p_init)", "stats = backend.train(int(cfg.init_steps) - backend.step, mixture=np.full(self.m, 1.0 / self.m))"),
 ("raymix/methods/policies.py", "p = self.updater.update(val)", "p = self.updater.update(-np.asarray(val))"),
 ("raymix/methods/policies.py", "w = self.tracker.update(signals.train_loss, signals.reference_loss)", "w = self.tracker.update(signals.reference_loss, signals.train_loss)"),
 ("raymix/methods/policies.py", "return self.tracker.update(signals.alignment, signals.grad_norm, signals.lr)", "return self.tracker.update(-np.asarray(signals.alignment), signals.grad_norm, signals.lr)"),
 ("raymix/methods/stratified.py", "np.full(problem.m, 1.0 / problem.m)", "np.eye(problem.m)[0]"),
 ("raymix/methods/handoff.py", "cfg = aioli_config(problem, init_mixture=p, init_steps=int(s_method))", "cfg = aioli_config(problem, init_mixture=p, init_steps=0)"),
]
SETS = {
    "core": (CORE, ["tests/test_solvers.py", "tests/test_laws.py"]),
    "methods": (METHODS, ["tests/methods", "-m", "not slow"]),
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in SETS:
        raise SystemExit(f"usage: hand_mutants.py {{{'|'.join(SETS)}}} [pytest arguments]; got {argv!r}")
    mutants, tests = SETS[argv[0]]
    tests = argv[1:] or tests
    killed = 0
    for f, old, new in mutants:
        killed += run_one(f, old, new, tests)
    print(f"{killed}/{len(mutants)} killed")
    return 0 if killed == len(mutants) else 1


def run_one(f: str, old: str, new: str, tests: list[str]) -> bool:
    work = pathlib.Path(tempfile.mkdtemp(prefix="raymix-mutant-"))
    try:
        shutil.copytree(SRC / "raymix", work / "raymix")
        shutil.copytree(SRC / "tests", work / "tests")
        shutil.copy(SRC / "pyproject.toml", work / "pyproject.toml")
        text = (work / f).read_text()
        if old not in text:
            raise SystemExit(f"{f} no longer contains {old!r}: update this mutant")
        (work / f).write_text(text.replace(old, new, 1))
        r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
                           cwd=work, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(work)})
    finally:
        shutil.rmtree(work, ignore_errors=True)
    killed = r.returncode != 0
    print(("KILLED  " if killed else "SURVIVED") + f"  {f}: {old!r} -> {new!r}", flush=True)
    return killed


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
