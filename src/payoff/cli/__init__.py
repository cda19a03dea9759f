"""The `payoff` command line."""

from __future__ import annotations

from payoff.cli._app import app, main

__all__ = ["app", "main"]
