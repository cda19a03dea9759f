"""Analysis of stored trials: forecasts, value, Pareto fronts, risk and decisions."""

from __future__ import annotations

from payoff.analysis._curves import CURVE_FAMILIES, CurveFamily, CurveFit, fit_curve
from payoff.analysis._forecast import (
    ENSEMBLE_FAMILIES,
    Forecast,
    Inverse,
    forecast_curve,
    required_size,
)
from payoff.analysis._marginal import (
    LeverMarginal,
    MarginalStep,
    lever_marginal,
    marginal_returns,
)
from payoff.analysis._pareto import (
    ParetoFront,
    ParetoPoint,
    non_dominated,
    pareto_front,
    pareto_fronts,
)
from payoff.analysis._pilot_view import PilotAnswerView, PilotView, pilot_view
from payoff.analysis._recommend import Choice, Investment, Recommendation, recommend
from payoff.analysis._risk import (
    Flag,
    MetricDraw,
    RiskResult,
    TornadoBar,
    Uncertain,
    risk_flags,
    simulate,
)
from payoff.analysis._scaling import scaling_frame
from payoff.analysis._value import (
    Assumption,
    Economics,
    Footprint,
    SettingValue,
    Tco,
    ValueAnalysis,
    ValueModel,
    economics,
    value_analysis,
    value_per_prediction,
)
from payoff.analysis._whatif import WhatIf, activations_per_example, what_if, what_if_frame

__all__ = [
    "Assumption",
    "CURVE_FAMILIES",
    "Choice",
    "CurveFamily",
    "CurveFit",
    "ENSEMBLE_FAMILIES",
    "Economics",
    "Flag",
    "Footprint",
    "Forecast",
    "Inverse",
    "Investment",
    "LeverMarginal",
    "MarginalStep",
    "MetricDraw",
    "ParetoFront",
    "ParetoPoint",
    "PilotAnswerView",
    "PilotView",
    "Recommendation",
    "RiskResult",
    "SettingValue",
    "Tco",
    "TornadoBar",
    "Uncertain",
    "ValueAnalysis",
    "ValueModel",
    "WhatIf",
    "activations_per_example",
    "economics",
    "fit_curve",
    "forecast_curve",
    "lever_marginal",
    "marginal_returns",
    "non_dominated",
    "pareto_front",
    "pareto_fronts",
    "pilot_view",
    "recommend",
    "required_size",
    "risk_flags",
    "simulate",
    "value_analysis",
    "value_per_prediction",
    "scaling_frame",
    "what_if",
    "what_if_frame",
]
