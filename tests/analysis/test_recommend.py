"""Recommendations: cheapest setting meeting a target, best ROI in budget, next investment."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import payoff
from payoff._errors import ConfigError
from payoff.analysis import Recommendation, pareto_front, recommend, value_analysis
from payoff.cli import app
from payoff.config import config_from_dict
from tests.analysis.test_value import build_value_study

runner = CliRunner()


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> payoff.Study:
    return build_value_study(tmp_path_factory)


@pytest.fixture(scope="module")
def rec(study: payoff.Study) -> Recommendation:
    return study.recommend(n_draws=2000)


@pytest.fixture(scope="module")
def plain_study(tmp_path_factory: pytest.TempPathFactory) -> payoff.Study:
    """Two trials, no value section, and a lever without a return curve (lr)."""
    path = tmp_path_factory.mktemp("plain") / "p.db"
    config = config_from_dict(
        {
            "study": "plain",
            "task": {"dataset": "sklearn:wine", "metric": "accuracy", "model": "mlp"},
            "levers": {"lr": [0.0001, 0.0002]},
            "train": {"model": "small", "batch_size": 32, "epochs": 1},
            "seeds": 1,
            "labels": {"usd_per_example": 0.04},
        }
    )
    return payoff.run(config, storage=path)


def test_cheapest_setting_meeting_the_target(study: payoff.Study, rec: Recommendation) -> None:
    analysis = value_analysis(study)
    front = pareto_front(analysis, "tco_usd")
    assert rec.target == 0.9 and rec.target_metric == "test_accuracy"  # the study file's
    assert rec.target_met
    choice = rec.meets_target
    assert choice is not None and choice.kind == "measured"
    assert choice.metric_value >= 0.9
    assert choice.on_pareto_front and front.contains(choice.key)
    meeting = [s for s in analysis.settings if s.metric_mean >= 0.9]
    assert choice.tco_usd == pytest.approx(min(s.tco.total_usd for s in meeting))
    assert choice.trials == analysis.setting(choice.key).trials
    assert any("Pareto front" in e for e in choice.evidence)
    assert any(e.startswith("TCO") for e in choice.evidence)
    assert rec.statements[0].startswith("Cheapest setting that meets test_accuracy ≥ 0.9")
    assert "measured" in rec.statements[0]


def test_best_roi_and_risk(study: payoff.Study, rec: Recommendation) -> None:
    analysis = value_analysis(study)
    best = rec.best_roi
    assert rec.ranked_by == "roi" and rec.value_configured
    assert best is not None and best.on_pareto_front
    front = pareto_front(analysis, "tco_usd")
    top = max(
        (s for s in analysis.settings if front.contains(s.key)), key=lambda s: s.economics.roi
    )
    assert best.key == top.key and best.roi == pytest.approx(top.economics.roi)
    assert rec.risk is not None and rec.risk.key == rec.meets_target.key  # type: ignore[union-attr]
    assert 0 <= rec.risk.p_loss <= 1
    assert any(s.startswith("Risk of") for s in rec.statements)


def test_budget_limits_the_choice(study: payoff.Study) -> None:
    analysis = value_analysis(study)
    tcos = sorted(s.tco.total_usd for s in analysis.settings)
    budget = tcos[len(tcos) // 2]
    r = study.recommend(budget_usd=budget, n_draws=500)
    assert r.best_roi is not None and r.best_roi.tco_usd <= budget
    assert r.best_roi.on_pareto_front
    tiny = study.recommend(budget_usd=tcos[0] / 2, n_draws=500)
    assert tiny.best_roi is None
    assert any(s.startswith("No setting fits the budget") for s in tiny.statements)


def test_next_investment_is_a_priced_forecast(rec: Recommendation) -> None:
    text = " ".join(rec.statements)
    if rec.next_investment is None:
        assert "No further investment is forecast to pay" in text
        return
    inv = rec.next_investment
    assert inv.lever in {"data", "compute"}
    assert inv.to_amount > inv.from_amount and inv.cost_usd >= 0
    assert inv.npv_gain_usd > 0 and 0 <= inv.p_loss <= 1
    assert "forecast" in inv.statement and "Next investment" in text


def test_a_target_no_measured_setting_meets(study: payoff.Study) -> None:
    analysis = value_analysis(study)
    # Seeded trials repeat exactly: no setting of this study scores 1.0.
    assert max(s.metric_mean for s in analysis.settings) < 1.0
    r = study.recommend(target="accuracy=1.0", n_draws=500)
    assert not r.target_met
    assert r.statements[0].startswith("No measured setting meets test_accuracy ≥ 1")
    if r.meets_target is None:
        assert "No setting meets the target, measured or forecast" in r.statements[0]
    else:
        assert r.meets_target.kind == "forecast" and not r.meets_target.on_pareto_front
        assert "forecast" in r.meets_target.statement


def test_plainly_says_when_nothing_meets_the_target(plain_study: payoff.Study) -> None:
    r = plain_study.recommend(target={"accuracy": 0.999}, n_draws=500)
    assert not r.target_met and r.meets_target is None
    assert "No setting meets the target, measured or forecast" in r.statements[0]
    assert "no lever has a return curve" in r.statements[0]
    # No value section: ranked by the metric, and it says how to get ROI.
    assert not r.value_configured and r.ranked_by == "test_accuracy"
    assert r.best_roi is not None and r.risk is None
    assert any("Add a `value:` section" in s for s in r.statements)
    assert r.next_investment is None
    assert any(s.startswith("No next investment to forecast") for s in r.statements)


def test_bad_arguments(study: payoff.Study) -> None:
    with pytest.raises(ConfigError, match="budget"):
        study.recommend(budget_usd=-1)
    with pytest.raises(ConfigError, match="range"):
        study.recommend(target="accuracy=1.5")
    with pytest.raises(ConfigError, match="not among the trials' metrics"):
        study.recommend(target="mse=0.1")
    with pytest.raises(ConfigError, match="METRIC|look like"):
        recommend(study, target="accuracy")


def test_typed_frozen_and_reproducible(study: payoff.Study, rec: Recommendation) -> None:
    assert isinstance(rec, Recommendation)
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.target = 0.5  # type: ignore[misc]
    data = rec.as_dict()
    json.dumps(data, allow_nan=False)  # NaN and infinity become null
    again = study.recommend(n_draws=2000)
    assert again.as_dict() == data
    assert str(rec) == "\n".join(rec.statements)


def test_cli_recommend(study: payoff.Study, tmp_path: Path) -> None:
    storage = study.storage
    out = runner.invoke(
        app, ["recommend", "value", "--storage", storage, "--json", "--budget-usd", "1000"]
    )
    assert out.exit_code == 0, out.output
    data = json.loads(out.stdout)
    assert data["meets_target"]["kind"] == "measured" and data["budget_usd"] == 1000
    out = runner.invoke(
        app, ["recommend", "value", "--storage", storage, "--target", "accuracy=0.95"]
    )
    assert out.exit_code == 0, out.output
    assert "test_accuracy ≥ 0.95" in out.stdout and "evidence" in out.stdout
    bad = runner.invoke(app, ["recommend", "value", "--storage", storage, "--target", "x=1"])
    assert bad.exit_code == 2 and "error:" in bad.output
    missing = runner.invoke(app, ["recommend", "nope", "--storage", storage])
    assert missing.exit_code == 2
