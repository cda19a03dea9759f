"""Analysis of stored trials: return curves, forecasts and their inverses."""

from __future__ import annotations

from payoff.analysis._curves import CURVE_FAMILIES, CurveFamily, CurveFit, fit_curve
from payoff.analysis._forecast import (
    ENSEMBLE_FAMILIES,
    Forecast,
    Inverse,
    forecast_curve,
    required_size,
)

__all__ = [
    "CURVE_FAMILIES",
    "ENSEMBLE_FAMILIES",
    "CurveFamily",
    "CurveFit",
    "Forecast",
    "Inverse",
    "fit_curve",
    "forecast_curve",
    "required_size",
]
