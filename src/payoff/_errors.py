"""Errors raised by payoff.

PayoffError
├── ConfigError(ValueError)        a study file or argument is wrong: exit code 2
├── PriceNotFoundError(LookupError) a price-book entry does not exist
├── StudyNotFoundError(LookupError) no such study in the storage
└── TrialError(RuntimeError)        a trial failed; stored as failed with this reason
    ├── DivergedError               the loss became NaN or infinite
    └── TrialSkipped                the setting cannot run on this hardware; stored as skipped
"""

from __future__ import annotations


class PayoffError(Exception):
    """Base class for payoff errors."""


class ConfigError(PayoffError, ValueError):
    """A study file, option or argument is invalid."""


class PriceNotFoundError(PayoffError, LookupError):
    """A price-book entry does not exist."""


class StudyNotFoundError(PayoffError, LookupError):
    """No study of that name is in the storage."""


class TrialError(PayoffError, RuntimeError):
    """A trial failed; the message is stored as its reason."""


class DivergedError(TrialError):
    """The training loss became NaN or infinite."""


class TrialSkipped(TrialError):
    """The trial's setting cannot run here (e.g. a precision the device lacks).

    Stored as skipped (Optuna's PRUNED state) with the reason; a rerun does not retry it.
    """
