"""Fidelity analysis of the LMO framework (paper §4, Appendix C).

* :func:`similarity` — sim(Ã, A*) of §4.3, with :func:`fit_scale` / :func:`fit_scale_to_dynamics` for b^t;
* :func:`static_law_fit_table` / :func:`dynamic_law_fit_table` — law fits across sweeps (Table 5), and
  :func:`leave_one_out` — the static law's out-of-sample fit on one sweep;
* :func:`greedy_vs_optimal` — greedy vs brute-force dynamic mixtures (Table 10).
"""

from raymix.analysis.fits import dynamic_law_fit_table, leave_one_out, static_law_fit_table
from raymix.analysis.greedy import GreedyVsOptimal, greedy_vs_optimal
from raymix.analysis.similarity import fit_scale, fit_scale_to_dynamics, normalized_column_sums, similarity

__all__ = [
    "GreedyVsOptimal",
    "dynamic_law_fit_table",
    "fit_scale",
    "fit_scale_to_dynamics",
    "greedy_vs_optimal",
    "leave_one_out",
    "normalized_column_sums",
    "similarity",
    "static_law_fit_table",
]
