"""Mixture validation and typed configs: every bad input raises its RaymixError subclass, quoting the value."""

from __future__ import annotations

import numpy as np
import pytest

from raymix import Mixture
from raymix.config import Config
from raymix.errors import ConfigError, MixtureError, RaymixError
from raymix.methods import MixingProblem
from raymix.methods.policies import AioliConfig
from raymix.mixture import as_weights


def test_mixture_basics():
    m = Mixture({"code": 0.3, "books": 0.7})
    assert m.groups == ("code", "books")
    np.testing.assert_allclose(m.weights, [0.3, 0.7])
    assert m["books"] == pytest.approx(0.7)
    assert Mixture.uniform(["a", "b", "c"]).weights == pytest.approx([1 / 3] * 3)
    assert m.aligned(["books", "code"]).weights == pytest.approx([0.7, 0.3])
    assert Mixture({"a": 2, "b": 6}, normalize=True).weights == pytest.approx([0.25, 0.75])
    w = m.weights
    w[0] = 5
    assert m["code"] == pytest.approx(0.3)  # weights is a copy


@pytest.mark.parametrize("bad,quoted", [
    ({"a": 0.5, "b": 0.6}, "1.1"),
    ({"a": -0.1, "b": 1.1}, "-0.1"),
    ({"a": float("nan"), "b": 1.0}, "nan"),
    ({"a": float("inf"), "b": 0.0}, "inf"),
    ({}, "at least one group"),
    ({"": 1.0}, "''"),
])
def test_mixture_rejects_bad_values(bad, quoted):
    with pytest.raises(MixtureError, match=quoted.replace(".", r"\.")) as e:
        Mixture(bad)
    assert isinstance(e.value, RaymixError) and isinstance(e.value, ValueError)


def test_mixture_groups_must_match_the_data():
    m = Mixture({"code": 0.5, "books": 0.5})
    with pytest.raises(MixtureError, match="unknown: \\['books'\\]"):
        m.aligned(["code", "web"])
    with pytest.raises(MixtureError, match="duplicates"):
        Mixture.from_array(["a", "a"], [0.5, 0.5])
    with pytest.raises(MixtureError, match="3 weights"):
        Mixture.from_array(["a", "b"], [0.2, 0.3, 0.5])
    with pytest.raises(MixtureError, match="unknown group 'web'"):
        m["web"]
    with pytest.raises(MixtureError):
        as_weights([0.2, 0.2])


def test_config_roundtrip_and_errors():
    cfg = AioliConfig(eta=0.3, ema=0.1, init_mixture=[0.2, 0.8])
    again = AioliConfig.from_dict(cfg.to_dict())
    assert again == cfg
    with pytest.raises(ConfigError, match="no field"):
        AioliConfig.from_dict({"etta": 1})
    with pytest.raises(ConfigError, match="delta must lie in \\(0.0, 1.0\\), got 1.5"):
        AioliConfig(delta=1.5)
    with pytest.raises(ConfigError, match="normalization"):
        AioliConfig(normalization="l7")
    prob = MixingProblem(groups=("a", "b"), total_steps=10)
    assert MixingProblem.from_dict(prob.to_dict()) == prob
    with pytest.raises(ConfigError, match="at least 2 groups"):
        MixingProblem(groups=("a",))
    assert issubclass(type(prob), Config)
