"""Learning-curve families and their bounded least-squares fits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from payoff import ConfigError
from payoff.analysis import CURVE_FAMILIES, fit_curve

SIZES = 16.0 * np.sqrt(2.0) ** np.arange(9)  # LCDB's anchors: 16, 23, 32, ... 256

# One rising curve per family, in normalised x (x = size / max size).
TRUE_PARAMS = {
    "pow3": (0.9, 0.05, 0.6),
    "pow4": (0.92, 0.1, 0.8, 0.05),
    "mmf": (0.3, 0.05, 0.9, 1.2),
    "weibull": (0.9, 0.5, 8.0, 0.7),
    "exp3": (0.85, 0.5, 6.0),
    "logpower": (0.9, -3.0, -0.9),
    "janoschek": (0.9, 0.3, 8.0, 0.7),
}


def test_every_family_has_a_ceiling_and_a_test_curve() -> None:
    assert set(TRUE_PARAMS) == set(CURVE_FAMILIES)
    for name, family in CURVE_FAMILIES.items():
        assert family.name == name
        assert family.ceiling_param in family.param_names
        assert len(TRUE_PARAMS[name]) == len(family.param_names)


@pytest.mark.parametrize("name", sorted(TRUE_PARAMS))
def test_each_family_fits_its_own_curve(name: str) -> None:
    family = CURVE_FAMILIES[name]
    y = family.predict(SIZES / SIZES[-1], TRUE_PARAMS[name])
    fit = fit_curve(SIZES, y, name, ceiling_max=1.0)
    assert fit.rmse < 2e-3
    assert np.allclose(fit.predict(SIZES), y, atol=5e-3)
    assert math.isfinite(fit.ceiling)


def test_pow3_parameters_are_recovered() -> None:
    y = 0.9 - 0.05 * (SIZES / SIZES[-1]) ** -0.6
    fit = fit_curve(SIZES, y, "pow3")
    assert fit.params == pytest.approx((0.9, 0.05, 0.6), rel=1e-3)
    assert fit.ceiling == pytest.approx(0.9, rel=1e-3)
    assert fit.x_scale == SIZES[-1]
    # The fitted curve extrapolates like the true one.
    assert fit.predict([SIZES[-1] * 16])[0] == pytest.approx(0.9 - 0.05 * 16**-0.6, abs=1e-4)


def test_ceiling_respects_the_bound() -> None:
    y = np.linspace(0.5, 0.99, len(SIZES))  # still rising steeply at the end
    for name in CURVE_FAMILIES:
        assert fit_curve(SIZES, y, name, ceiling_max=1.0).ceiling <= 1.0 + 1e-12


def test_a_falling_curve_is_fitted_flat() -> None:
    y = np.linspace(0.8, 0.7, len(SIZES))
    fit = fit_curve(SIZES, y, "pow3")
    # Families only rise: the best they can do with a falling curve is stay level.
    assert fit.predict([SIZES[-1] * 8])[0] == pytest.approx(float(y.mean()), abs=0.02)


@pytest.mark.parametrize(
    ("sizes", "scores", "family"),
    [
        ([1, 2, 3], [0.1, 0.2], "pow3"),
        ([0, 2, 3], [0.1, 0.2, 0.3], "pow3"),
        ([1, 2, 3], [0.1, math.nan, 0.3], "pow3"),
        ([1, 2, 3], [0.1, 0.2, 0.3], "pow9"),
        ([2, 2, 2], [0.1, 0.2, 0.3], "pow3"),
    ],
)
def test_invalid_inputs_raise_config_error(
    sizes: list[float], scores: list[float], family: str
) -> None:
    with pytest.raises(ConfigError):
        fit_curve(sizes, scores, family)
