"""Real studies on real data in real SQLite files."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch

import payoff
from payoff.study._storage import artifact_store
from payoff.tasks import build_model, load_task
from tests.conftest import write_study

LEDGER = (
    "wall_s",
    "cpu_s",
    "flops",
    "peak_mem_bytes",
    "energy_kwh",
    "co2_kg",
    "cost_usd_compute",
    "cost_usd_energy",
    "cost_usd_labels",
    "cost_usd_total",
    "energy_method",
    "flops_method",
    "peak_mem_method",
    "hardware",
    "n_train",
    "n_params",
    "size_bytes",
    "latency_p50_s",
    "latency_p95_s",
    "throughput_per_s",
    "val_accuracy",
    "test_accuracy",
    "val_f1_macro",
    "test_f1_macro",
    "test_precision_macro",
    "test_recall_macro",
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[payoff.Study, Path]:
    tmp = tmp_path_factory.mktemp("tiny")
    db = tmp / "payoff.db"
    return payoff.run(write_study(tmp / "s.yaml"), storage=db), db


def test_every_planned_trial_completes_with_its_full_ledger(
    tiny: tuple[payoff.Study, Path],
) -> None:
    study, _ = tiny
    frame = study.trials_frame()
    assert len(frame) == study.n_planned == 4
    assert (frame["state"] == "COMPLETE").all()
    for field in LEDGER:
        assert field in frame.columns, field
        assert frame[field].notna().all(), field
    assert (frame["wall_s"] > 0).all() and (frame["flops"] > 0).all()
    assert (frame["energy_kwh"] > 0).all() and (frame["co2_kg"] > 0).all()
    total = frame["cost_usd_compute"] + frame["cost_usd_energy"] + frame["cost_usd_labels"]
    assert (abs(frame["cost_usd_total"] - total) < 1e-12).all()
    # Labels are priced per example used: twice the data costs twice as much.
    half, full = (frame[frame["data"] == d]["cost_usd_labels"].iloc[0] for d in (0.5, 1.0))
    assert full == pytest.approx(2 * half, rel=0.02)
    assert (frame["cost_usd_labels"] == frame["n_train"] * 0.04).all()
    # The confusion matrix agrees with the test accuracy it was counted from.
    for _, row in frame.iterrows():
        confusion = np.array(json.loads(row["test_confusion"]))
        assert np.trace(confusion) / confusion.sum() == pytest.approx(row["test_accuracy"])


def test_more_epochs_cost_more_flops(tiny: tuple[payoff.Study, Path]) -> None:
    frame = tiny[0].trials_frame()
    row = frame[frame["data"] == 1.0].set_index("compute")
    # Early stopping may cut a run short, so compare per epoch actually run.
    per_epoch = row["flops"] / row["epochs_run"]
    assert per_epoch.loc[2] == pytest.approx(per_epoch.loc[4], rel=1e-6)
    assert row.loc[4, "flops"] >= row.loc[2, "flops"]


def test_optuna_reads_the_curve_and_values(tiny: tuple[payoff.Study, Path]) -> None:
    study, db = tiny
    plain = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}")
    for t in plain.trials:
        assert t.value == t.user_attrs["val_accuracy"]
        assert len(t.intermediate_values) == t.user_attrs["epochs_run"]
        assert study.curve(t.number)[-1]["epoch"] == t.user_attrs["epochs_run"]


def test_weights_are_kept_and_reload_to_the_same_test_accuracy(
    tiny: tuple[payoff.Study, Path],
) -> None:
    study, db = tiny
    trial = study.trials()[0]
    store = artifact_store(study.storage)
    with store.open_reader(trial.user_attrs["weights_artifact"]) as f:
        state = torch.load(f, weights_only=True)
    task = load_task("sklearn:wine")
    model = build_model("mlp", "small", n_features=task.n_features, n_outputs=task.n_classes)
    model.load_state_dict(state)
    model.eval()
    with torch.inference_mode():
        pred = model(torch.from_numpy(task.X_test)).argmax(1).numpy()
    assert (pred == task.y_test).mean() == pytest.approx(trial.user_attrs["test_accuracy"])


def test_rerun_resumes_and_runs_nothing_twice(
    tiny: tuple[payoff.Study, Path], tmp_path: Path
) -> None:
    study, db = tiny
    before = [t.number for t in study.trials()]
    again = payoff.run(write_study(tmp_path / "s.yaml"), storage=db)
    assert [t.number for t in again.trials()] == before


def test_a_trial_repeats_to_the_same_metric(tmp_path: Path) -> None:
    values = []
    for i in range(2):
        path = write_study(tmp_path / f"s{i}.yaml", levers={"data": [0.5]})
        study = payoff.run(path, storage=tmp_path / f"db{i}.db")
        values.append(study.trials()[0].user_attrs["val_accuracy"])
    assert values[0] == values[1]


def test_diverging_trials_fail_with_a_reason_and_the_rest_complete(tmp_path: Path) -> None:
    path = write_study(
        tmp_path / "s.yaml",
        levers={"lr": [0.01, 1e6]},
        train={"model": "small", "optimizer": "sgd", "epochs": 3},
    )
    frame = payoff.run(path, storage=tmp_path / "p.db").trials_frame()
    by_lr = frame.set_index("lr")
    assert by_lr.loc[0.01, "state"] == "COMPLETE"
    assert by_lr.loc[1e6, "state"] == "FAIL"
    assert "diverged" in by_lr.loc[1e6, "fail_reason"]
    assert "lower the learning rate" in by_lr.loc[1e6, "fail_reason"]
    # The failed trial's cost is still in the ledger: the money was spent.
    assert by_lr.loc[1e6, "wall_s"] > 0


def test_budget_stops_new_trials_and_says_so(tmp_path: Path) -> None:
    messages: list[str] = []

    class Watch(payoff.RunObserver):
        def on_stop(self, message: str) -> None:
            messages.append(message)

    path = write_study(tmp_path / "s.yaml", budget={"usd": 1e-9})
    study = payoff.run(path, storage=tmp_path / "p.db", observer=Watch())
    assert len(study.trials()) == 1
    assert "budget spent" in messages[-1] and "3 planned trials not started" in messages[-1]
    # A raised budget runs the rest, and only the rest.
    raised = write_study(tmp_path / "s.yaml", budget={"usd": 100.0})
    frame = payoff.run(raised, storage=tmp_path / "p.db", observer=Watch()).trials_frame()
    assert messages[-1] == "all planned trials done"
    assert len(frame) == 4 and frame[["data", "compute"]].drop_duplicates().shape[0] == 4


def test_random_design_draws_distinct_settings(tmp_path: Path) -> None:
    path = write_study(
        tmp_path / "s.yaml",
        design="random",
        n_trials=3,
        levers={"data": [0.25, 0.5, 1.0], "compute": [1, 2]},
    )
    frame = payoff.run(path, storage=tmp_path / "p.db").trials_frame()
    assert len(frame) == 3
    assert len(frame[["data", "compute"]].drop_duplicates()) == 3


def test_regression_task_records_regression_metrics(tmp_path: Path) -> None:
    path = write_study(
        tmp_path / "s.yaml",
        task={"dataset": "sklearn:diabetes", "metric": "mae"},
        levers={"model": ["small", [16, 8]]},
    )
    study = payoff.run(path, storage=tmp_path / "p.db")
    frame = study.trials_frame()
    assert set(frame["model"]) == {"small", "16x8"}
    for col in ("test_mse", "test_mae", "test_r2"):
        assert frame[col].map(math.isfinite).all()
    assert study.optuna.direction == optuna.study.StudyDirection.MINIMIZE
