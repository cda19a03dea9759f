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

# Decisions: the value model and TCO, Pareto fronts, marginal returns, risk, recommendations.
from payoff.analysis._marginal import (  # noqa: E402
    LeverMarginal,
    MarginalStep,
    lever_marginal,
    marginal_returns,
)
from payoff.analysis._pareto import (  # noqa: E402
    ParetoFront,
    ParetoPoint,
    non_dominated,
    pareto_front,
    pareto_fronts,
)
from payoff.analysis._recommend import Choice, Investment, Recommendation, recommend  # noqa: E402
from payoff.analysis._risk import (  # noqa: E402
    Flag,
    MetricDraw,
    RiskResult,
    TornadoBar,
    Uncertain,
    risk_flags,
    simulate,
)
from payoff.analysis._value import (  # noqa: E402
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

__all__ += [
    "Assumption",
    "Choice",
    "Economics",
    "Flag",
    "Footprint",
    "Investment",
    "LeverMarginal",
    "MarginalStep",
    "MetricDraw",
    "ParetoFront",
    "ParetoPoint",
    "Recommendation",
    "RiskResult",
    "SettingValue",
    "Tco",
    "TornadoBar",
    "Uncertain",
    "ValueAnalysis",
    "ValueModel",
    "economics",
    "lever_marginal",
    "marginal_returns",
    "non_dominated",
    "pareto_front",
    "pareto_fronts",
    "recommend",
    "risk_flags",
    "simulate",
    "value_analysis",
    "value_per_prediction",
]
