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

__all__ = [
    "ConfigError",
    "DivergedError",
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
    "load",
    "load_config",
    "run",
    "trial_function",
]
