"""Errors raised by payoff.

PayoffError
├── ConfigError(ValueError)        a study file or argument is wrong: exit code 2
├── PriceNotFoundError(LookupError) a price-book entry does not exist
├── StudyNotFoundError(LookupError) no such study in the storage
└── TrialError(RuntimeError)        a trial failed; stored as failed with this reason
    └── DivergedError               the loss became NaN or infinite
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
