from __future__ import annotations

import payoff.returns
import payoff.tasks


def test_all_matches_public_names() -> None:
    for module in (payoff.tasks, payoff.returns):
        public = {name for name in vars(module) if not name.startswith("_")}
        public -= {"annotations"}
        assert set(module.__all__) == public, module.__name__
