"""MLflow export, read back with MLflow's own client from a real file store."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pytest
from typer.testing import CliRunner

import payoff
from payoff.cli import app
from tests.conftest import write_study

runner = CliRunner()


@pytest.fixture(scope="module", params=["file", "sqlite"])
def exported(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[payoff.Study, str, Path]]:
    tmp = tmp_path_factory.mktemp("mlflow")
    # MLflow 3 keeps its file store for reading and writing only when asked to.
    patch = pytest.MonkeyPatch()
    patch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    study = payoff.run(write_study(tmp / "s.yaml"), storage=tmp / "p.db")
    report = tmp / "report.html"
    report.write_text("<html><body>report</body></html>")
    uri = f"file://{tmp / 'mlruns'}" if request.param == "file" else f"sqlite:///{tmp}/mlflow.db"
    args = [
        "export",
        "mlflow",
        "tiny",
        "--storage",
        str(tmp / "p.db"),
        "--tracking-uri",
        uri,
        "--report",
        str(report),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    yield study, uri, report
    patch.undo()


def test_every_trial_round_trips_its_params_and_metrics(
    exported: tuple[payoff.Study, str, Path],
) -> None:
    study, uri, _ = exported
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("payoff-tiny")
    runs = client.search_runs([experiment.experiment_id], "tags.`payoff.study` = 'tiny'")
    assert len(runs) == len(study.trials()) == 4
    by_trial = {int(r.data.tags["payoff.trial"]): r for r in runs}
    for t in study.trials():
        run = by_trial[t.number]
        assert run.data.params == {k: str(v) for k, v in t.params.items()}
        for key in ("val_accuracy", "test_accuracy", "wall_s", "cost_usd_total", "energy_kwh"):
            assert run.data.metrics[key] == pytest.approx(t.user_attrs[key])
        history = client.get_metric_history(run.info.run_id, "curve.val_accuracy")
        assert [m.step for m in history] == list(range(1, t.user_attrs["epochs_run"] + 1))
        assert run.info.status == "FINISHED"


def test_the_report_is_an_artifact_and_export_is_idempotent(
    exported: tuple[payoff.Study, str, Path], tmp_path: Path
) -> None:
    study, uri, report = exported
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("payoff-tiny")
    (parent,) = client.search_runs([experiment.experiment_id], "tags.`payoff.study_run` = 'tiny'")
    names = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {"report.html", "study.json"} <= names
    path = client.download_artifacts(parent.info.run_id, "study.json", str(tmp_path))
    assert json.loads(Path(path).read_text())["study"] == "tiny"
    result = runner.invoke(
        app,
        [
            "export",
            "mlflow",
            "tiny",
            "--storage",
            study.storage.removeprefix("sqlite:///"),
            "--tracking-uri",
            uri,
        ],
    )
    assert result.exit_code == 0 and "exported 0 trial runs" in result.output


def test_unknown_target_exits_2() -> None:
    result = runner.invoke(app, ["export", "wandb", "tiny"])
    assert result.exit_code == 2 and "payoff export mlflow STUDY" in result.output
