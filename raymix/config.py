"""Typed dataclass configs that round-trip through Ray Tune's ``param_space``.

Every config in raymix subclasses :class:`Config`: a dataclass whose fields carry a docstring-like
``help`` in their metadata, whose ``validate()`` raises :class:`~raymix.errors.ConfigError` quoting the
bad value, and which converts to / from plain dicts (JSON- and Tune-friendly) with ``to_dict`` /
``from_dict``.  Nested configs are converted recursively.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from typing import Any, TypeVar

from raymix.errors import ConfigError

C = TypeVar("C", bound="Config")


@dataclasses.dataclass
class Config:
    """Base of all raymix configs."""

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` on an invalid field.  Subclasses extend this."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, Config):
                v = v.to_dict()
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any] | None) -> C:
        """Build from a dict; unknown keys raise :class:`ConfigError` listing the valid ones."""
        data = dict(data or {})
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ConfigError(f"{cls.__name__} has no field(s) {unknown}; valid fields: {sorted(names)}")
        hints = typing.get_type_hints(cls)
        kwargs = {}
        for k, v in data.items():
            sub = _config_type(hints.get(k))
            if sub is not None and isinstance(v, dict):
                v = sub.from_dict(v)
            elif isinstance(v, list) and _is_tuple(hints.get(k)):
                v = tuple(v)
            kwargs[k] = v
        return cls(**kwargs)

    def replace(self: C, **changes: Any) -> C:
        return dataclasses.replace(self, **changes)


def _config_type(tp: Any) -> type[Config] | None:
    if isinstance(tp, type) and issubclass(tp, Config):
        return tp
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        for a in typing.get_args(tp):
            if isinstance(a, type) and issubclass(a, Config):
                return a
    return None


def _is_tuple(tp: Any) -> bool:
    if typing.get_origin(tp) is tuple:
        return True
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        return any(typing.get_origin(a) is tuple for a in typing.get_args(tp))
    return False


def field(default: Any = dataclasses.MISSING, *, help: str, **kw: Any) -> Any:  # noqa: A002
    """A dataclass field with a help text (shown by the CLI and in docs)."""
    return dataclasses.field(default=default, metadata={"help": help}, **kw)


def check(cond: bool, msg: str) -> None:
    """Raise :class:`ConfigError` with ``msg`` unless ``cond``."""
    if not cond:
        raise ConfigError(msg)


def check_int(name: str, value: Any, lo: int | None = None) -> None:
    """Check that ``value`` is an integer (not a bool, not a float such as 2.7) and ``>= lo``."""
    ok = isinstance(value, int) and not isinstance(value, bool) or (
        hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iu" and getattr(value, "ndim", 1) == 0)
    if not ok or (lo is not None and int(value) < lo):
        bound = "" if lo is None else f" >= {lo}"
        raise ConfigError(f"{name} must be an integer{bound}, got {value!r}")


def check_range(name: str, value: Any, lo: float | None = None, hi: float | None = None, *,
                lo_open: bool = False, hi_open: bool = False) -> None:
    """Check ``lo <(=) value <(=) hi`` for a numeric field; the message quotes the value and the range."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    ok = math.isfinite(x)  # not NaN, not ±inf (an infinite rate or size is never meant)
    if lo is not None:
        ok = ok and (x > lo if lo_open else x >= lo)
    if hi is not None:
        ok = ok and (x < hi if hi_open else x <= hi)
    if not ok:
        lb = "(" if lo_open else "["
        rb = ")" if hi_open else "]"
        raise ConfigError(
            f"{name} must lie in {lb}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{rb}, got {value!r}"
        )
