"""Forecasts from a real study: what more labels would return and cost."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from typer.testing import CliRunner

import payoff
from payoff.cli import app

runner = CliRunner()


@payoff.trial_function
def digits_logistic(trial: payoff.Trial) -> dict[str, float]:
    X, y = load_digits(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X / 16, y, test_size=0.3, random_state=0)
    n = int(trial.lever("data"))
    rows = np.random.default_rng(trial.seed).permutation(len(y_tr))[:n]
    model = LogisticRegression(C=trial.lever("C", 1.0), max_iter=2000)
    model.fit(X_tr[rows], y_tr[rows])
    trial.record(n_train=n)
    return {"accuracy": float(model.score(X_te, y_te))}


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> tuple[payoff.Study, Path]:
    db = tmp_path_factory.mktemp("fc") / "p.db"
    s = digits_logistic.run(
        study="digits-lr",
        levers={"data": [40, 80, 160, 320], "C": [1.0]},
        metric="accuracy",
        seeds=2,
        storage=db,
        labels={"usd_per_example": 0.04},
    )
    return s, db


def test_forecast_beyond_the_data_has_an_interval_and_a_price(
    study: tuple[payoff.Study, Path],
) -> None:
    result = study[0].forecast("data", to=1200)
    f = result.forecast
    assert 0 <= f.low <= f.point <= f.high <= 1
    assert f.extrapolation == pytest.approx(1200 / 320)
    assert [p.n_seeds for p in result.curve.points] == [2, 2, 2, 2]
    assert result.costs["cost_usd_labels"].value == pytest.approx(1200 * 0.04)
    # What it takes to get there: only the labels beyond the 320 the study already has.
    assert result.costs["cost_usd_labels_new"].value == pytest.approx((1200 - 320) * 0.04)
    assert result.costs["wall_s"].method.startswith("estimate: linear fit")
    measured = study[0].forecast("data", to=320).costs["wall_s"]
    assert measured.method.startswith("measured")


def test_target_says_how_much_data_or_that_it_is_out_of_reach(
    study: tuple[payoff.Study, Path],
) -> None:
    near = study[0].forecast("data", target="accuracy=0.9")
    assert near.inverse.reachable
    assert near.inverse.low <= near.inverse.point <= near.inverse.high
    assert near.costs["cost_usd_labels"].value == pytest.approx(near.inverse.point * 0.04)
    far = study[0].forecast("data", target={"accuracy": 1.5})
    assert not far.inverse.reachable and far.inverse.message
    assert math.isfinite(far.inverse.ceiling)


def test_cli_forecast_prints_a_table_and_json(study: tuple[payoff.Study, Path]) -> None:
    _, db = study
    args = ["forecast", "digits-lr", "--storage", str(db), "--lever", "data"]
    result = runner.invoke(app, [*args, "--to", "1200"])
    assert result.exit_code == 0, result.output
    assert "forecast at 1,200 training examples" in result.output
    said = " ".join(result.output.split())  # rich wraps long lines
    assert "to get there: $35.20" in said
    assert "880 new examples beyond the 320 already labelled" in said
    assert "all labels at that size: $48.00" in said
    data = json.loads(runner.invoke(app, [*args, "--target", "accuracy=0.9", "--json"]).output)
    assert data["inverse"]["reachable"] is True and data["costs"]["cost_usd_labels"]["value"] > 0
    # Out of reach: strict JSON (no Infinity or NaN, which JSON parsers other than Python's
    # refuse).
    far = runner.invoke(app, [*args, "--target", "accuracy=1.5", "--json"]).output

    def refuse(name: str) -> None:
        raise ValueError(f"not JSON: {name}")

    assert json.loads(far, parse_constant=refuse)["inverse"]["reachable"] is False


def test_forecast_and_recommend_price_new_labels_the_same_way(
    study: tuple[payoff.Study, Path],
) -> None:
    rec = study[0].recommend()
    step = next(c for c in rec.candidates if c.lever == "data")
    assert (step.basis, step.from_amount, step.to_amount) == ("forecast", 320, 640)
    new = study[0].forecast("data", to=640).costs["cost_usd_labels_new"].value
    assert new == pytest.approx(320 * 0.04)
    # The step adds the compute of a bigger run: logistic regression's is a tiny fraction.
    assert step.cost_usd == pytest.approx(new, rel=1e-3)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--lever", "optimizer", "--to", "5"], "has no return curve"),
        (["--lever", "data"], "exactly one of"),
        (["--lever", "data", "--to", "5", "--target", "accuracy=0.9"], "exactly one of"),
        (["--lever", "data", "--target", "accuracy"], "accuracy=0.97"),
        (["--lever", "model", "--to", "5"], "does not vary 'model'"),
        (["--lever", "data", "--target", "mse=0.1"], "records no metric 'mse'"),
    ],
)
def test_cli_forecast_errors_exit_2(
    study: tuple[payoff.Study, Path], extra: list[str], message: str
) -> None:
    result = runner.invoke(app, ["forecast", "digits-lr", "--storage", str(study[1]), *extra])
    assert result.exit_code == 2, result.output
    assert message in result.output


def test_a_study_with_one_trial_cannot_draw_a_curve(tmp_path: Path) -> None:
    digits_logistic.run(
        study="one", levers={"data": [100]}, metric="accuracy", storage=tmp_path / "p.db"
    )
    args = ["forecast", "one", "--storage", str(tmp_path / "p.db"), "--to", "500"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "at least 2 settings of 'data'" in result.output


def test_two_settings_forecast_with_a_warning(tmp_path: Path) -> None:
    study = digits_logistic.run(
        study="two", levers={"data": [50, 100]}, metric="accuracy", storage=tmp_path / "p.db"
    )
    f = study.forecast("data", to=1000).forecast
    assert f.warnings and f.high - f.low > 0.05
