"""Drift: served traffic like the training data raises no alarm; shifted traffic does."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import payoff
from payoff.cli import app
from payoff.serve._model import raw_frame
from payoff.serve._monitor import psi
from payoff.study._builtin import task_of
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


def test_unshifted_traffic_raises_no_alarm(
    served_study: payoff.Study, fresh_log: tuple[Path, TestClient]
) -> None:
    path, client = fresh_log
    task = task_of(served_study.config)
    _serve(client, raw_frame(task, task.X_train))
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
