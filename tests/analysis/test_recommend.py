"""Recommendations: cheapest setting meeting a target, best ROI in budget, next investment."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

import payoff
from payoff._errors import ConfigError
from payoff.analysis import Recommendation, recommend, value_analysis
from payoff.analysis._words import fmt_usd
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
    analysis = value_analysis(study.record())
    assert rec.target == 0.9 and rec.target_metric == "test_accuracy"  # the study file's
    assert rec.target_met
    choice = rec.cheapest_meeting_target
    assert choice is not None and choice.kind == "measured" and choice is rec.meets_target
    assert choice.metric_value >= 0.9
    meeting = [s for s in analysis.settings if s.metric_mean >= 0.9]
    assert choice.tco_usd == pytest.approx(min(s.tco.total_usd for s in meeting))
    assert choice.trials == analysis.setting(choice.key).trials
    assert any(e.startswith("TCO") for e in choice.evidence)
    assert any(
        s.startswith("Cheapest setting that meets test_accuracy ≥ 0.9") for s in rec.statements
    )


def test_recommended_is_the_best_npv_meeting_the_target(
    study: payoff.Study, rec: Recommendation
) -> None:
    analysis = value_analysis(study.record())
    meeting = [s for s in analysis.settings if s.metric_mean >= 0.9]
    top = max(meeting, key=lambda s: s.economics.npv_usd)
    assert rec.recommended is not None and rec.recommended.key == top.key
    assert rec.statements[0].startswith("Deploy ")
    # Its ROI carries its drivers, and they add up.
    s = analysis.setting(top.key)
    assert rec.recommended.drivers.startswith(fmt_usd(s.value_per_prediction_usd))
    assert fmt_usd(s.tco.total_usd) in rec.recommended.drivers
    assert "ROI = " in rec.statements[0]


def test_best_roi_is_the_highest_npv_and_risk(study: payoff.Study, rec: Recommendation) -> None:
    analysis = value_analysis(study.record())
    best = rec.best_roi
    assert rec.ranked_by == "npv" and rec.value_configured
    top = max(analysis.settings, key=lambda s: s.economics.npv_usd)
    assert best is not None and best.key == top.key
    assert best.npv_usd == pytest.approx(top.economics.npv_usd)
    assert rec.risk is not None and rec.recommended is not None
    assert rec.risk.key == rec.recommended.key
    assert 0 <= rec.risk.p_loss <= 1
    assert any(s.startswith("Risk of") for s in rec.statements)


def test_budget_limits_the_choice(study: payoff.Study) -> None:
    analysis = value_analysis(study.record())
    tcos = sorted(s.tco.total_usd for s in analysis.settings)
    budget = tcos[len(tcos) // 2]
    r = study.recommend(budget_usd=budget, n_draws=500)
    within = [s for s in analysis.settings if s.tco.total_usd <= budget]
    assert r.best_roi is not None and r.best_roi.tco_usd <= budget
    assert r.best_roi.npv_usd == pytest.approx(max(s.economics.npv_usd for s in within))
    assert all(
        row["within_budget"] == (row["tco_usd"] <= budget) for row in r.as_dict()["settings"]
    )
    tiny = study.recommend(budget_usd=tcos[0] / 2, n_draws=500)
    assert tiny.best_roi is None and tiny.recommended is None
    assert any(s.startswith("No setting fits the budget") for s in tiny.statements)


def test_next_investment_starts_from_the_recommended_setting(rec: Recommendation) -> None:
    assert rec.recommended is not None
    assert {c.lever for c in rec.candidates} == {"data", "compute"}
    for c in rec.candidates:
        assert c.from_setting == rec.recommended.key
        assert c.basis in {"measured", "forecast"} and 0 <= c.p_loss <= 1
        assert math.isfinite(c.expected_npv_gain_usd)
    text = " ".join(rec.statements)
    assert rec.labels_answer.startswith("More labels? ") and rec.labels_answer in text
    if rec.next_investment is None:
        assert rec.next_investment_why_none.startswith("no further step on ")
        assert "Next investment: none" in text
        assert not any(c.pays for c in rec.candidates)
    else:
        inv = rec.next_investment
        assert inv.expected_npv_gain_usd > 0 and inv.p_loss <= 0.5 and inv.pays
        assert inv.from_setting == rec.recommended.key
        assert "Next investment, from" in text


def test_a_target_no_measured_setting_meets(study: payoff.Study) -> None:
    analysis = value_analysis(study.record())
    # Seeded trials repeat exactly: no setting of this study scores 1.0.
    assert max(s.metric_mean for s in analysis.settings) < 1.0
    r = study.recommend(target="accuracy=1.0", n_draws=500)
    assert not r.target_met and r.cheapest_meeting_target is None
    said = next(s for s in r.statements if s.startswith("No measured setting meets"))
    assert said.startswith("No measured setting meets test_accuracy ≥ 1")
    if r.meets_target is None:
        assert "No setting meets the target, measured or forecast" in said
    else:
        assert r.meets_target.kind == "forecast" and not r.meets_target.on_pareto_front
        assert "forecast" in r.meets_target.statement
        assert "never (within reach)" not in said
    # Without a setting that meets the target, the best ROI is recommended, and says so.
    assert r.recommended is not None and r.best_roi is not None
    assert r.recommended.key == r.best_roi.key
    assert "no measured setting meets the target" in r.recommended.why


def test_plainly_says_when_nothing_meets_the_target(plain_study: payoff.Study) -> None:
    r = plain_study.recommend(target={"accuracy": 0.999}, n_draws=500)
    assert not r.target_met and r.meets_target is None
    said = next(s for s in r.statements if s.startswith("No measured setting meets"))
    assert "No setting meets the target, measured or forecast" in said
    assert "no lever has a return curve" in said
    # No value section: ranked by the metric, and it says how to get ROI.
    assert not r.value_configured and r.ranked_by == "test_accuracy"
    assert r.best_roi is not None and r.risk is None
    assert any("Add a `value:` section" in s for s in r.statements)
    assert r.next_investment is None and r.candidates == ()
    assert "lr: not an amount to invest more in" in r.next_investment_why_none
    assert r.labels_answer.startswith("More labels? Not studied")


def test_bad_arguments(study: payoff.Study) -> None:
    with pytest.raises(ConfigError, match="budget"):
        study.recommend(budget_usd=-1)
    with pytest.raises(ConfigError, match="range"):
        study.recommend(target="accuracy=1.5")
    with pytest.raises(ConfigError, match="not among the trials' metrics"):
        study.recommend(target="mse=0.1")
    with pytest.raises(ConfigError, match="METRIC|look like"):
        recommend(study.record(), target="accuracy")


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
    assert data["cheapest_meeting_target"]["kind"] == "measured" and data["budget_usd"] == 1000
    # The documented shape.
    row = data["settings"][0]
    for key in (
        "setting",
        "n_trials",
        "metric_mean",
        "metric_sd",
        "tco_usd",
        "value_usd",
        "npv_usd",
        "roi",
        "payback_months",
        "meets_target",
        "within_budget",
        "threshold",
    ):
        assert key in row, key
    assert set(data["recommended"]) >= {"setting", "why"}
    assert set(data["best_roi"]) >= {"setting", "npv_usd", "roi"}
    nxt = data["next_investment"]
    if nxt is None:
        assert data["next_investment_why_none"]
    else:
        assert set(nxt) >= {
            "from_setting",
            "lever",
            "to",
            "cost_usd",
            "gain",
            "gain_low",
            "gain_high",
            "expected_npv_gain_usd",
            "p_loss",
            "basis",
        }
    assert "pilot" in data
    out = runner.invoke(
        app, ["recommend", "value", "--storage", storage, "--target", "accuracy=0.95"]
    )
    assert out.exit_code == 0, out.output
    assert "test_accuracy ≥ 0.95" in out.stdout and "evidence" in out.stdout
    bad = runner.invoke(app, ["recommend", "value", "--storage", storage, "--target", "x=1"])
    assert bad.exit_code == 2 and "error:" in bad.output
    missing = runner.invoke(app, ["recommend", "nope", "--storage", storage])
    assert missing.exit_code == 2
