"""payoff: what AI engineering investments return.

Run metered training trials over the levers a team can invest in, store every cost and
return, and turn them into a decision.
"""

from __future__ import annotations

from payoff._errors import (
    ConfigError,
    DivergedError,
    PayoffError,
    PriceNotFoundError,
    StudyNotFoundError,
    TrialError,
)
from payoff.config import StudyConfig, load_config
from payoff.study import RunObserver, Study, Trial, TrialFunction, load, run, trial_function

__version__ = "0.1.0"

# Forecasting needs SciPy; load it on first use so `import payoff` stays light.
_LAZY = {"Forecast", "Inverse", "forecast_curve", "required_size"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        from payoff import analysis

        return getattr(analysis, name)
    raise AttributeError(f"module 'payoff' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY)


__all__ = [
    "ConfigError",
    "DivergedError",
    "Forecast",
    "Inverse",
    "PayoffError",
    "PriceNotFoundError",
    "RunObserver",
    "Study",
    "StudyConfig",
    "StudyNotFoundError",
    "Trial",
    "TrialError",
    "TrialFunction",
    "__version__",
    "forecast_curve",
    "load",
    "load_config",
    "required_size",
    "run",
    "trial_function",
]
