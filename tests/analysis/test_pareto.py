"""Pareto fronts: non-dominated settings on cost against return."""

from __future__ import annotations

import math

import pytest

import payoff
from payoff.analysis import non_dominated, pareto_front, pareto_fronts, value_analysis
from tests.analysis.test_value import build_value_study


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> payoff.Study:
    return build_value_study(tmp_path_factory)


def test_non_dominated_by_hand() -> None:
    costs = [1, 2, 3, 2, 5, math.nan]
    returns = [0.5, 0.7, 0.6, 0.7, 0.9, 1.0]
    # (3, 0.6) is beaten by (2, 0.7); the tie (2, 0.7) twice stays; NaN never counts.
    assert non_dominated(costs, returns).tolist() == [True, True, False, True, True, False]
    # For an error metric, lower is better.
    assert non_dominated([1, 2, 3], [0.3, 0.2, 0.25], maximize=False).tolist() == [
        True,
        True,
        False,
    ]


def _dominates(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] <= b[0] and a[1] >= b[1] and (a[0] < b[0] or a[1] > b[1])


def test_fronts_on_a_real_study(study: payoff.Study) -> None:
    a = value_analysis(study.record())
    fronts = pareto_fronts(a)
    assert [f.x for f in fronts] == ["tco_usd", "training_usd", "latency_p50_s", "co2_kg"]
    for f in fronts:
        assert f.y == "test_accuracy" and f.maximize
        assert len(f.points) == len(a.settings)
        pts = {p.key: (p.x, p.y) for p in f.points}
        for p in f.points:
            dominated = any(_dominates(q, (p.x, p.y)) for k, q in pts.items() if k != p.key)
            assert p.on_front == (not dominated), (f.x, p.key)
            assert p.trials and math.isfinite(p.y_std)
        assert f.front and [p.x for p in f.front] == sorted(p.x for p in f.front)
    tco = pareto_front(a, "tco_usd")
    # Error bars: the seeds' spread of the metric.
    s = a.settings[0]
    p = next(p for p in tco.points if p.key == s.key)
    assert p.y_std == pytest.approx(s.metric_std)


def test_unknown_axis() -> None:
    with pytest.raises(KeyError, match="no cost axis"):
        pareto_front(None, "beauty")  # type: ignore[arg-type]
