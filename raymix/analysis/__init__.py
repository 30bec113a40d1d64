"""Fidelity analysis of the LMO framework (paper §4, Appendix C).

* :func:`similarity` — sim(Ã, A*) of §4.3, with :func:`fit_scale` / :func:`fit_scale_to_dynamics` for b^t;
* :func:`static_law_fit_table` / :func:`dynamic_law_fit_table` — law fits across sweeps (Table 5);
* :func:`greedy_vs_optimal` — greedy vs brute-force dynamic mixtures (Table 10).
"""

from raymix.analysis.fits import dynamic_law_fit_table, static_law_fit_table
from raymix.analysis.greedy import GreedyVsOptimal, greedy_vs_optimal
from raymix.analysis.similarity import fit_scale, fit_scale_to_dynamics, normalized_column_sums, similarity

__all__ = [
    "GreedyVsOptimal",
    "dynamic_law_fit_table",
    "fit_scale",
    "fit_scale_to_dynamics",
    "greedy_vs_optimal",
    "normalized_column_sums",
    "similarity",
    "static_law_fit_table",
]
