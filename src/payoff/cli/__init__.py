"""The `payoff` command line."""

from __future__ import annotations

from payoff.cli import (
    _decide,  # noqa: F401
    _feedback,  # noqa: F401
    _serve,  # noqa: F401
)
from payoff.cli._app import app, main

__all__ = ["app", "main"]
