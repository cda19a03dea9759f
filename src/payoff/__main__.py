"""`python -m payoff`: the same as the `payoff` command."""

from __future__ import annotations

from payoff.cli import main

main()
