"""Mixture proportions: named data groups with weights on the probability simplex."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from raymix.errors import MixtureError

#: Absolute tolerance on ``sum(weights) == 1``.
SUM_TOLERANCE = 1e-6


class Mixture:
    """Named groups with proportions ``p`` in the simplex Δ^m (paper §2).

    ``Mixture({"code": 0.3, "books": 0.7})``.  Weights must be finite, non-negative and sum to one
    within :data:`SUM_TOLERANCE` (pass ``normalize=True`` to rescale non-negative weights instead).
    Group names must be unique non-empty strings.  Instances are immutable; ``weights`` returns a copy.
    """

    __slots__ = ("_groups", "_weights")

    def __init__(self, proportions: Mapping[str, float], *, normalize: bool = False) -> None:
        if not isinstance(proportions, Mapping):
            raise MixtureError(
                f"Mixture expects a mapping group -> proportion, got {type(proportions).__name__} "
                f"{proportions!r}; use Mixture.from_array(groups, weights) for arrays"
            )
        groups = tuple(proportions.keys())
        weights = [proportions[g] for g in groups]
        self._groups, self._weights = _validate(groups, weights, normalize=normalize)

    @classmethod
    def from_array(cls, groups: Sequence[str], weights: Iterable[float], *, normalize: bool = False) -> Mixture:
        """Build from parallel sequences of group names and weights."""
        groups = tuple(groups)
        raw = np.asarray(list(weights))
        if raw.dtype.kind not in "iuf":  # strings, booleans, objects: numpy would convert "0.5" and True silently
            raise MixtureError(f"proportions must be numbers, got {list(weights)!r}")
        w = list(raw.astype(float).ravel())
        if len(groups) != len(w):
            raise MixtureError(
                f"{len(groups)} groups {list(groups)} but {len(w)} weights {w}; give one weight per group"
            )
        obj = cls.__new__(cls)
        obj._groups, obj._weights = _validate(groups, w, normalize=normalize)
        return obj

    @classmethod
    def uniform(cls, groups: Sequence[str]) -> Mixture:
        """Stratified sampling: ``p_i = 1/m`` for every group."""
        groups = tuple(groups)
        if not groups:
            raise MixtureError("Mixture.uniform needs at least one group name, got []")
        return cls.from_array(groups, np.full(len(groups), 1.0 / len(groups)))

    @property
    def groups(self) -> tuple[str, ...]:
        return self._groups

    @property
    def weights(self) -> np.ndarray:
        """Proportions as a float64 array of shape ``(m,)`` in the order of :attr:`groups`."""
        return self._weights.copy()

    @property
    def m(self) -> int:
        return len(self._groups)

    def __getitem__(self, group: str) -> float:
        try:
            return float(self._weights[self._groups.index(group)])
        except ValueError:
            raise MixtureError(f"unknown group {group!r}; this mixture has groups {list(self._groups)}") from None

    def __len__(self) -> int:
        return len(self._groups)

    def __iter__(self):
        return iter(self._groups)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mixture):
            return NotImplemented
        return self._groups == other._groups and bool(np.allclose(self._weights, other._weights, atol=1e-12))

    def __hash__(self) -> int:
        return hash((self._groups, tuple(np.round(self._weights, 12))))

    def __repr__(self) -> str:
        inner = ", ".join(f"{g!r}: {w:.4g}" for g, w in zip(self._groups, self._weights))
        return f"Mixture({{{inner}}})"

    def to_dict(self) -> dict[str, float]:
        return {g: float(w) for g, w in zip(self._groups, self._weights)}

    def aligned(self, groups: Sequence[str]) -> Mixture:
        """The same mixture with its groups in the order of ``groups``.

        Raises :class:`MixtureError` when the group sets differ (an unknown or a missing group): a
        mixture must name exactly the data's groups.
        """
        groups = tuple(groups)
        if set(groups) != set(self._groups) or len(groups) != len(self._groups):
            unknown = sorted(set(self._groups) - set(groups))
            missing = sorted(set(groups) - set(self._groups))
            raise MixtureError(
                f"mixture groups {list(self._groups)} do not match the data groups {list(groups)}"
                f" (unknown: {unknown}, missing: {missing}); name every data group exactly once"
            )
        return Mixture.from_array(groups, [self[g] for g in groups])


def _validate(groups: tuple, weights: list, *, normalize: bool) -> tuple[tuple[str, ...], np.ndarray]:
    if not groups:
        raise MixtureError("a mixture needs at least one group, got none")
    for g in groups:
        if not isinstance(g, str) or not g:
            raise MixtureError(f"group names must be non-empty strings, got {g!r}")
    if len(set(groups)) != len(groups):
        dup = sorted({g for g in groups if groups.count(g) > 1})
        raise MixtureError(f"group names must be unique, got duplicates {dup}")
    bad = [f"{g}={x!r}" for g, x in zip(groups, weights)
           if isinstance(x, (str, bytes, bool, np.bool_)) or not isinstance(x, (int, float, np.number))]
    if bad:
        # "0.5" or True would be converted silently by numpy; a proportion must be given as a number
        raise MixtureError(f"proportions must be numbers, got {', '.join(bad)}")
    try:
        w = np.asarray(weights, dtype=float)
    except (TypeError, ValueError):
        raise MixtureError(f"proportions must be numbers, got {weights!r}") from None
    bad = [f"{g}={x!r}" for g, x in zip(groups, weights) if not np.isfinite(float(x))]
    if bad:
        raise MixtureError(f"proportions must be finite, got {', '.join(bad)}")
    neg = [f"{g}={x:.6g}" for g, x in zip(groups, w) if x < 0]
    if neg:
        raise MixtureError(f"proportions must be >= 0, got {', '.join(neg)}")
    total = float(w.sum())
    if normalize:
        if total <= 0:
            raise MixtureError(f"cannot normalize proportions that sum to {total!r}: {dict(zip(groups, w))}")
        w = w / total
    elif abs(total - 1.0) > SUM_TOLERANCE:
        raise MixtureError(
            f"proportions must sum to 1 (±{SUM_TOLERANCE:g}), got sum {total:.8g} for "
            f"{ {g: float(x) for g, x in zip(groups, w)} }; rescale them or pass normalize=True"
        )
    else:
        w = w / total
    w.setflags(write=False)
    return groups, w


def as_weights(p: Mixture | Sequence[float] | np.ndarray, groups: Sequence[str] | None = None) -> np.ndarray:
    """Validated float64 proportions ``(m,)`` from a Mixture (aligned to ``groups``) or an array."""
    if isinstance(p, Mixture):
        return (p.aligned(groups) if groups is not None else p).weights
    raw = np.asarray(p)
    if raw.dtype.kind not in "iuf":
        raise MixtureError(f"proportions must be numbers, got {np.asarray(p, dtype=object).tolist()!r}")
    arr = raw.astype(float).ravel()
    names = tuple(groups) if groups is not None else tuple(f"g{i}" for i in range(arr.size))
    return Mixture.from_array(names, arr).weights
