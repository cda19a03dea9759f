"""Drift: served traffic like the training data raises no alarm; shifted traffic does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import payoff
from payoff.cli import app
from payoff.serve import PredictionLog
from payoff.serve._model import load_trained, raw_frame
from payoff.serve._monitor import psi
from payoff.study._builtin import task_of
from tests.conftest import write_study
from tests.serve.conftest import API_KEY, TestClient

runner = CliRunner()


def _serve(client: TestClient, frame: object) -> None:
    records = frame.to_dict(orient="records")  # type: ignore[attr-defined]
    for start in range(0, len(records), 50):
        response = client.post(
            "/predict",
            json={"records": records[start : start + 50]},
            headers={"X-API-Key": API_KEY},
        )
        assert response.status_code == 200, response.text


@pytest.fixture
def fresh_log(served_study: payoff.Study, trained: object, tmp_path: Path) -> tuple[Path, object]:
    from payoff.serve import create_app

    path = tmp_path / "log.db"
    app_ = create_app(served_study, api_key=API_KEY, log_path=path, model=trained)
    return path, TestClient(app_, raise_server_exceptions=False)


def test_psi_is_zero_for_the_same_sample_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=5000)
    assert psi(a, a) == pytest.approx(0.0, abs=1e-9)
    assert psi(a, rng.normal(size=5000)) < 0.05
    assert psi(a, rng.normal(loc=1.5, size=5000)) > 1.0
    # Ties and constant columns: a count with many zeros, a column that never varies.
    counts = rng.poisson(0.3, 5000).astype(float)
    assert psi(counts, rng.poisson(0.3, 5000).astype(float)) < 0.05
    assert psi(np.zeros(100), np.zeros(300)) < 0.01 and psi(np.zeros(100), np.ones(300)) > 1.0
    # Missing values are a bin of their own.
    holes = np.where(rng.random(5000) < 0.5, np.nan, a)
    assert psi(a, holes) > 0.5


def test_unshifted_traffic_raises_no_alarm(
    served_study: payoff.Study, fresh_log: tuple[Path, TestClient]
) -> None:
    path, client = fresh_log
    task = task_of(served_study.config)
    _serve(client, task.raw_train)  # the training rows, as they were read
    report = payoff.serve.monitor(served_study, log_path=path)
    assert report.n_served == len(task.X_train)
    assert not report.retrain and "no drift" in report.message
    assert not any(f.drifted for f in report.features)


def test_shifted_traffic_says_retrain(
    served_study: payoff.Study, fresh_log: tuple[Path, TestClient]
) -> None:
    path, client = fresh_log
    task = task_of(served_study.config)
    shifted = task.X_train + 1.5  # every input 1.5 training standard deviations higher
    _serve(client, raw_frame(task, shifted))
    report = payoff.serve.monitor(served_study, log_path=path)
    assert report.retrain and "retraining looks warranted" in report.message
    assert sum(f.drifted for f in report.features) >= len(report.features) // 2
    result = runner.invoke(
        app,
        [
            "monitor",
            served_study.name,
            "--storage",
            served_study.storage,
            "--log",
            str(path),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["retrain"] is True
    gate = runner.invoke(
        app,
        ["monitor", served_study.name, "--storage", served_study.storage, "--log", str(path)]
        + ["--fail-on-drift"],
    )
    assert gate.exit_code == 1 and "retraining looks warranted" in gate.output


def test_no_log_is_a_clear_error(served_study: payoff.Study, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "monitor",
            served_study.name,
            "--storage",
            served_study.storage,
            "--log",
            str(tmp_path / "none.db"),
        ],
    )
    assert result.exit_code == 2 and "no prediction log" in result.output


@pytest.fixture(scope="module")
def churn(tmp_path_factory: pytest.TempPathFactory) -> tuple[payoff.Study, object]:
    """A table with what real ones have: a categorical, a 0/1 and an integer column."""
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 1500
    plan = np.where(rng.random(n) < 0.28, "pro", "basic")
    overtime = (rng.random(n) < 0.3).astype(int)
    visits = rng.poisson(2.0, n)
    spend = rng.normal(50, 10, n)
    logit = 1.5 * (plan == "pro") + overtime - 0.4 * visits + (spend - 50) / 10
    churned = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    tmp = tmp_path_factory.mktemp("churn")
    frame = pd.DataFrame(
        {"plan": plan, "overtime": overtime, "visits": visits, "spend": spend, "churn": churned}
    )
    frame.to_csv(tmp / "churn.csv", index=False)
    path = write_study(
        tmp / "s.yaml",
        task={"dataset": f"csv:{tmp / 'churn.csv'}", "label": "churn", "metric": "accuracy"},
        levers={"data": [1.0]},
    )
    study = payoff.run(path, storage=tmp / "p.db")
    return study, load_trained(study, "best")


def _judge(study: payoff.Study, model: object, rows: object, path: Path) -> object:
    task = task_of(study.config)
    out = model.predict(np.asarray(task.preprocessor.transform(rows), np.float32))  # type: ignore[attr-defined]
    log = PredictionLog(path)
    log.append(
        model.trial,  # type: ignore[attr-defined]
        rows.to_dict("records"),  # type: ignore[attr-defined]
        [task.classes[i] for i in out.argmax(axis=1)],
        confidence=out.max(axis=1).tolist(),
    )
    log.close()
    return payoff.serve.monitor(study, log_path=path)


def _draw(rng: np.random.Generator, frame: object, mask: np.ndarray, share: float) -> object:
    k = int(round(300 * share))
    rows = np.concatenate(
        [rng.choice(np.flatnonzero(mask), k), rng.choice(np.flatnonzero(~mask), 300 - k)]
    )
    return frame.iloc[rows].reset_index(drop=True)  # type: ignore[attr-defined]


def test_raw_columns_judged_as_a_person_reads_them(churn: tuple, tmp_path: Path) -> None:
    study, model = churn
    train = task_of(study.config).raw_train
    rng = np.random.default_rng(1)
    # Rows from the training split itself: no alarm (the old encoded KS cried wolf here).
    quiet = _judge(study, model, train.sample(300, random_state=1), tmp_path / "q.db")
    assert not quiet.retrain, quiet.message
    kinds = {f.name: (f.kind, f.test) for f in quiet.features}
    assert kinds["plan"] == kinds["overtime"] == kinds["visits"] == ("categorical", "chi-square")
    assert kinds["spend"] == ("numeric", "KS")

    # plan=pro from 28% to 64%: a categorical share shift is flagged.
    shifted = _judge(
        study, model, _draw(rng, train, train["plan"] == "pro", 0.64), tmp_path / "c.db"
    )
    by_name = {f.name: f for f in shifted.features}
    assert shifted.retrain and by_name["plan"].drifted and by_name["plan"].psi > 0.3

    # A 0/1 column's share doubled, which quantile bins used to read as PSI 0.000.
    flags = _judge(study, model, _draw(rng, train, train["overtime"] == 1, 0.6), tmp_path / "o.db")
    assert {f.name: f for f in flags.features}["overtime"].drifted

    # An integer column moved up by 2 visits.
    more = train.sample(300, random_state=2).assign(visits=lambda f: f["visits"] + 2)
    visits = _judge(study, model, more, tmp_path / "v.db")
    assert {f.name: f for f in visits.features}["visits"].drifted and visits.retrain

    # A category the model never saw is its own share, named in the message.
    odd = train.sample(300, random_state=3).reset_index(drop=True)
    odd.loc[:59, "plan"] = "Teleport"
    new = _judge(study, model, odd, tmp_path / "n.db")
    plan = {f.name: f for f in new.features}["plan"]
    assert plan.drifted and plan.new_share == pytest.approx(0.2)
    assert "20% new categories" in new.message


def test_a_prediction_share_shift_is_flagged(churn: tuple, tmp_path: Path) -> None:
    study, model = churn
    task = task_of(study.config)
    train = task.raw_train
    out = model.predict(np.asarray(task.preprocessor.transform(train), np.float32))
    predicted = np.asarray([task.classes[i] for i in out.argmax(axis=1)])
    minority = min(set(predicted), key=lambda c: np.mean(predicted == c))
    share = float(np.mean(predicted == minority))
    rows = _draw(np.random.default_rng(4), train, predicted == minority, min(0.95, share + 0.25))
    report = _judge(study, model, rows, tmp_path / "p.db")
    assert report.prediction.drifted and report.prediction.test == "chi-square"
    assert report.retrain


def test_predictions_the_model_is_less_sure_of_are_flagged(churn: tuple, tmp_path: Path) -> None:
    study, model = churn
    task = task_of(study.config)
    train = task.raw_train
    out = model.predict(np.asarray(task.preprocessor.transform(train), np.float32))
    sure = out.max(axis=1)
    # Rows near the decision boundary: what a new kind of customer looks like to the model.
    unsure = train[sure < np.quantile(sure, 0.3)].sample(300, replace=True, random_state=5)
    report = _judge(study, model, unsure.reset_index(drop=True), tmp_path / "u.db")
    assert report.confidence is not None and report.confidence.drifted
    assert report.retrain and "their confidence PSI" in report.message
