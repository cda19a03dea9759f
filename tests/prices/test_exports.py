from __future__ import annotations

import payoff.prices


def test_all_matches_public_names() -> None:
    public = {n for n in vars(payoff.prices) if not n.startswith("_")} - {"annotations"}
    assert set(payoff.prices.__all__) == public
