"""Risk: a reproducible Monte Carlo, the tornado, and the warning flags."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

import payoff
from payoff._errors import ConfigError
from payoff.analysis import (
    MetricDraw,
    lever_marginal,
    risk_flags,
    simulate,
    value_analysis,
)
from payoff.analysis._risk import _overfit_trial, npv_roi
from tests.analysis.test_value import build_value_study


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> payoff.Study:
    return build_value_study(tmp_path_factory)


@pytest.fixture(scope="module")
def analysis(study: payoff.Study) -> payoff.analysis.ValueAnalysis:
    return value_analysis(study.record())


def test_the_same_seed_gives_the_same_answer(analysis: payoff.analysis.ValueAnalysis) -> None:
    s = analysis.settings[-1]
    a = simulate(analysis, s, n_draws=2000, seed=7)
    b = simulate(analysis, s, n_draws=2000, seed=7)
    c = simulate(analysis, s, n_draws=2000, seed=8)
    assert np.array_equal(a.npv_usd, b.npv_usd)
    assert a.as_dict() == b.as_dict()
    assert not np.array_equal(a.npv_usd, c.npv_usd)
    assert a.n_draws == 2000 and a.seed == 7


def test_summary_is_consistent(analysis: payoff.analysis.ValueAnalysis) -> None:
    s = analysis.settings[-1]
    r = simulate(analysis, s, n_draws=5000, seed=0)
    assert r.base_npv_usd == pytest.approx(s.economics.npv_usd)
    assert 0 <= r.p_loss <= 1
    assert r.npv_p5_usd <= r.npv_p50_usd <= r.npv_p95_usd
    assert r.npv_p5_usd == pytest.approx(np.percentile(r.npv_usd, 5))
    # The tornado: widest swing first, each bar one input at its ends, the rest at base.
    swings = [b.swing_usd for b in r.tornado]
    assert swings == sorted(swings, reverse=True)
    names = {b.name for b in r.tornado}
    assert {"metric", "volume", "usd_per_correct", "usd_per_error", "labels"} <= names
    vol = next(b for b in r.tornado if b.name == "volume")
    # NPV is linear in the volume: the swing is +-25% of the volume's share of NPV.
    up = npv_roi(analysis, s, s.value_metric_mean, {"volume": 1.25})[0]
    assert vol.npv_high_usd == pytest.approx(float(up))
    assert "seed 0" in r.method


def test_no_uncertainty_means_every_draw_is_the_base(
    analysis: payoff.analysis.ValueAnalysis,
) -> None:
    model = replace(analysis.model, price_uncertainty=0.0, value_uncertainty=0.0)
    certain = replace(analysis, model=model)
    s = certain.settings[-1]
    fixed = MetricDraw(0.95, 0.0, 0.0, 0.95, 0.95, "fixed", (0.0, 1.0))
    r = simulate(certain, s, metric=fixed, n_draws=500, seed=1)
    assert np.allclose(r.npv_usd, r.base_npv_usd)
    # At 95% accuracy a prediction earns 0.0095 - 0.0025: the setting pays.
    assert r.p_loss == 0.0
    loss = MetricDraw(0.5, 0.0, 0.0, 0.5, 0.5, "fixed", (0.0, 1.0))
    assert simulate(certain, s, metric=loss, n_draws=500, seed=1).p_loss == 1.0


def test_too_few_draws(analysis: payoff.analysis.ValueAnalysis) -> None:
    with pytest.raises(ConfigError, match="n_draws"):
        simulate(analysis, analysis.settings[0], n_draws=10)


def test_unstable_and_extrapolation_flags(
    study: payoff.Study, analysis: payoff.analysis.ValueAnalysis
) -> None:
    frame = study.trials_frame()
    shaky = replace(analysis.settings[0], metric_std=0.4)
    noisy = replace(analysis, settings=(shaky, *analysis.settings[1:]))
    far = lever_marginal(noisy, frame, study.config, "data", step=10.0)
    assert far.next is not None and far.next.extrapolation == pytest.approx(10.0)
    flags = risk_flags(study.record(), noisy, marginals=[far])
    kinds = {(f.kind, f.subject) for f in flags}
    assert ("unstable", shaky.key) in kinds
    assert ("extrapolation", "lever data") in kinds
    assert all(f.message for f in flags)


def test_overfitting_is_read_from_the_curve() -> None:
    curve = [
        {"epoch": 1, "train_loss": 1.0, "val_accuracy": 0.80},
        {"epoch": 2, "train_loss": 0.5, "val_accuracy": 0.92},
        {"epoch": 3, "train_loss": 0.2, "val_accuracy": 0.88},
        {"epoch": 4, "train_loss": 0.1, "val_accuracy": 0.85},
    ]
    e_best, v_best, e_last, v_last, drop, falls = _overfit_trial(curve, "val_accuracy", 1.0)
    assert (e_best, v_best, e_last, v_last) == (2, 0.92, 4, 0.85)
    assert drop == pytest.approx(0.07) and falls
    assert _overfit_trial(curve[:2], "val_accuracy", 1.0) is None
    assert math.isclose(_overfit_trial(curve, "val_accuracy", -1.0)[4], 0.05)
