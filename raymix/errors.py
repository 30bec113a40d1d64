"""The one error hierarchy of raymix.

Every error raised on bad input derives from :class:`RaymixError`, quotes the bad value and says how
to fix it.  Subclasses also derive from the matching builtin (``ValueError``, ``KeyError``, ...) so
callers that already catch those keep working.
"""

from __future__ import annotations


class RaymixError(Exception):
    """Base class of every error raymix raises on purpose."""


class ConfigError(RaymixError, ValueError):
    """A configuration field has an invalid value (type, range, or inconsistency with another field)."""


class MixtureError(RaymixError, ValueError):
    """Mixture proportions are not a valid point of the simplex, or name the wrong groups."""


class NotFittedError(RaymixError, RuntimeError):
    """A mixing law (or another estimator) was used before ``fit``."""


class FitError(RaymixError, RuntimeError):
    """A law or estimator could not be fitted from the given observations (shape, NaN, rank)."""


class DataError(RaymixError, ValueError):
    """Bad or inconsistent training data: shards, manifests, sources, splits."""


class EmptyGroupError(DataError):
    """A data group has no documents or no tokens."""


class SplitNotFoundError(DataError, KeyError):
    """A split (train/val/test) is missing from a shard directory."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class ShardError(DataError):
    """A shard file or manifest is corrupt, incomplete or inconsistent."""


class TokenizerMismatchError(DataError):
    """Tokenizer of the shards, the model or the caller disagree (hash or vocabulary size)."""


class SourceUnavailableError(DataError):
    """A corpus source cannot be fetched or read (missing package, file, network)."""


class MethodError(RaymixError, ValueError):
    """A mixing method was asked for something it cannot do (unknown name, bad phase results)."""


class CheckpointError(RaymixError, RuntimeError):
    """A checkpoint is missing, corrupt, or belongs to a different run configuration."""


class RaymixWarning(UserWarning):
    """A warning that matters to the person running raymix (a bound on p, a too-short schedule, a slower
    attention fallback).  The CLI and :class:`raymix.progress.ExperimentProgress` show each message once."""


class PlanError(ConfigError):
    """A method's plan cannot run as configured (budgets, schedules, seeds, data, resources).

    Raised by the plan check (:mod:`raymix.preflight`) before anything trains."""


class ResourceError(PlanError):
    """A trial asks for more CPUs or GPUs than any node of the cluster can ever offer."""


class NonFiniteError(RaymixError, FloatingPointError):
    """A training or evaluation loss (or a quantity derived from it) became NaN or infinite."""


class ExperimentMismatchError(RaymixError, ValueError):
    """An output directory holds the results of a different experiment."""


class DistributedError(RaymixError, RuntimeError):
    """The ranks of a data-parallel run disagree (p, counts) or have no process group to talk over."""
