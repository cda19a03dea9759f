"""Studies that evolve: more lever values or seeds run only the new trials; a change that
would make stored trials mean something else is refused before anything is written."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

import payoff
from payoff.cli import app
from payoff.serve._model import load_trained
from tests.conftest import write_study

runner = CliRunner()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def grown(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, payoff.Study]:
    tmp = tmp_path_factory.mktemp("evolve")
    db = tmp / "p.db"
    first = payoff.run(write_study(tmp / "a.yaml", levers={"data": [0.5, 1.0]}), storage=db)
    assert len(first.trials()) == 2
    # A value between the old ones, and a second seed for every setting.
    again = write_study(tmp / "b.yaml", levers={"data": [0.5, 0.75, 1.0]}, seeds=2)
    result = runner.invoke(app, ["run", str(again), "--storage", str(db)])
    assert result.exit_code == 0, result.output
    return db, payoff.load("tiny", db)


def test_adding_lever_values_and_seeds_runs_only_the_new_trials(
    grown: tuple[Path, payoff.Study],
) -> None:
    _, study = grown
    frame = study.trials_frame()
    assert len(frame) == 6  # 2 kept + 4 new (0.75 x 2 seeds, 0.5 and 1.0 seed 1)
    assert sorted(zip(frame["data"], frame["seed"], strict=True)) == [
        (0.5, 0), (0.5, 1), (0.75, 0), (0.75, 1), (1.0, 0), (1.0, 1),
    ]  # fmt: skip
    # Each trial trained what its row says: n_train follows data.
    n = frame.set_index("data")["n_train"]
    assert n[0.5].iloc[0] < n[0.75].iloc[0] < n[1.0].iloc[0]
    # And analysis sees old and new together.
    rec = study.recommend()
    assert {r["setting"]["data"] for r in rec.as_dict()["settings"]} == {0.5, 0.75, 1.0}


@pytest.mark.parametrize(
    ("name", "overrides", "message"),
    [
        ("another dataset", {"task": {"dataset": "sklearn:digits"}}, "task.dataset"),
        (
            "another metric",
            {"task": {"dataset": "sklearn:wine", "metric": "f1_macro", "model": "mlp"}},
            "task.metric: 'accuracy' -> 'f1_macro'",
        ),
        (
            "another model family",
            {"task": {"dataset": "sklearn:wine", "metric": "accuracy", "model": "linear"}},
            "task.model",
        ),
        (
            "a held learning rate",
            {"train": {"model": "small", "batch_size": 32, "lr": 0.1}},
            "train.lr: 0.01 -> 0.1",
        ),
        ("a setting twice", {"levers": {"data": [0.5, 0.5]}}, "listed twice"),
        ("an infinite setting", {"levers": {"data": [float("inf")]}}, "not a finite number"),
        (
            "absurd epochs",
            {"levers": {"compute": {"epochs": [10_000_000]}}},
            "largest sane setting",
        ),
        ("absurd seeds", {"seeds": 100_000_000}, "seeds"),
        ("an infinite lr", {"train": {"lr": float("inf")}}, "lr"),
    ],
)
def test_a_change_that_would_mislabel_stored_trials_is_refused_untouched(
    grown: tuple[Path, payoff.Study], tmp_path: Path, name: str, overrides: dict, message: str
) -> None:
    db, _ = grown
    before = _digest(db)
    path = write_study(tmp_path / "c.yaml", **overrides)
    result = runner.invoke(app, ["run", str(path), "--storage", str(db)])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split()), result.output
    assert "Traceback" not in result.output
    assert _digest(db) == before


def test_new_version_keeps_the_stored_study_whole_and_starts_afresh(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    first = payoff.run(write_study(tmp_path / "a.yaml", levers={"data": [0.5, 1.0]}), storage=db)
    kept_rows = first.trials_frame()[["data", "val_accuracy", "n_train"]]
    changed = write_study(
        tmp_path / "b.yaml",
        task={"dataset": "sklearn:wine", "metric": "f1_macro", "model": "mlp"},
        levers={"data": [1.0]},
    )
    refused = runner.invoke(app, ["run", str(changed), "--storage", str(db)])
    assert refused.exit_code == 2 and "--new-version" in " ".join(refused.output.split())

    result = runner.invoke(app, ["run", str(changed), "--storage", str(db), "--new-version"])
    assert result.exit_code == 0, result.output
    assert "kept as tiny.v1" in result.output
    kept, new = payoff.load("tiny.v1", db), payoff.load("tiny", db)
    assert kept.config.task.metric == "accuracy" and new.config.task.metric == "f1_macro"
    assert kept.trials_frame()[["data", "val_accuracy", "n_train"]].equals(kept_rows)
    assert len(new.trials()) == 1
    # The kept version is a study like any other: its decisions and weights still open.
    shown = runner.invoke(app, ["recommend", "tiny.v1", "--storage", str(db)])
    assert shown.exit_code == 0, shown.output
    assert load_trained(kept).task.feature_names == load_trained(new).task.feature_names

    again = runner.invoke(app, ["run", str(changed), "--storage", str(db), "--new-version"])
    assert again.exit_code == 0 and "kept as tiny.v2" in again.output
    assert payoff.load("tiny.v2", db).config.task.metric == "f1_macro"


def test_new_version_waits_for_a_live_run(tmp_path: Path) -> None:
    import os
    import socket
    import time

    import optuna

    db = tmp_path / "p.db"
    study = write_study(tmp_path / "a.yaml", levers={"data": [1.0]})
    payoff.run(study, storage=db)
    live = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}").ask()
    owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
    live.set_user_attr("owner", owner)  # this test's process: alive
    before = _digest(db)
    result = runner.invoke(app, ["run", str(study), "--storage", str(db), "--new-version"])
    assert result.exit_code == 2, result.output
    assert "trials running in another process" in " ".join(result.output.split())
    assert _digest(db) == before
