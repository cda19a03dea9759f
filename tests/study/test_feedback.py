"""`payoff feedback`: labelled rows join the training set; the next run trains on them."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_wine
from typer.testing import CliRunner

import payoff
from payoff.cli import app
from tests.conftest import write_study

runner = CliRunner()


def _wine_rows(n: int, *, seed: int = 0) -> pd.DataFrame:
    """New wine rows as a labeller would return them: real rows measured again (1% noise),
    the features and the class name."""
    data = load_wine(as_frame=True)
    frame = data.frame.sample(n, replace=n > len(data.frame), random_state=seed)
    frame = frame.reset_index(drop=True)
    labels = [data.target_names[i] for i in frame.pop("target")]
    noise = np.random.default_rng(seed).normal(1.0, 0.01, frame.shape)
    frame = frame * noise
    frame["label"] = labels
    return frame


@pytest.fixture
def wine(tmp_path: Path) -> tuple[Path, Path]:
    path = write_study(tmp_path / "s.yaml", levers={"data": [1.0]})
    db = tmp_path / "p.db"
    payoff.run(path, storage=db)
    return path, db


def test_feedback_rows_join_training_and_are_priced_on_the_next_run(
    wine: tuple[Path, Path], tmp_path: Path
) -> None:
    path, db = wine
    before = payoff.load("tiny", db).trials_frame()
    n_before = int(before["n_train"].iloc[0])
    csv = tmp_path / "labels.csv"
    _wine_rows(40).to_csv(csv, index=False)
    result = runner.invoke(
        app, ["feedback", "tiny", str(csv), "--storage", str(db), "--usd-per-label", "0.5"]
    )
    assert result.exit_code == 0, result.output
    assert "added 40 labelled rows" in result.output and "$20.00" in result.output
    assert f"now {n_before + 40} rows" in result.output

    rerun = runner.invoke(app, ["run", str(path), "--storage", str(db)])
    assert rerun.exit_code == 0, rerun.output
    # The earlier version's trial is kept, not counted as done for the new one.
    assert "1 planned, 0 already done, 1 to run" in rerun.output
    study = payoff.load("tiny", db)
    frame = study.trials_frame()
    assert len(frame) == 1 and frame["data_version"].iloc[0] == 1
    assert frame["n_train"].iloc[0] == n_before + 40
    # Labels are priced per example at the study's price, feedback rows included.
    assert frame["cost_usd_labels"].iloc[0] == pytest.approx((n_before + 40) * 0.04)
    everything = study.trials_frame(all_versions=True)
    assert len(everything) == 2  # the earlier trial is kept
    assert sorted(everything["data_version"]) == [0, 1]
    batch = study.optuna.user_attrs["feedback"][0]
    assert batch["n_rows"] == 40 and batch["cost_usd_labels"] == pytest.approx(20.0)
    again = payoff.run(path, storage=db)  # nothing left to run on this version
    assert len(again.trials_frame(all_versions=True)) == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns=["alcohol"]), "missing: alcohol"),
        (lambda f: f.assign(colour=1), "unknown: colour"),
        (lambda f: f.assign(label="class_9"), "not classes of the task"),
        (lambda f: f.assign(label=None), "rows without a label"),
        (lambda f: f.iloc[:0], "no rows"),
    ],
)
def test_a_bad_feedback_file_exits_2_and_changes_nothing(
    wine: tuple[Path, Path], tmp_path: Path, change: object, message: str
) -> None:
    _, db = wine
    csv = tmp_path / "labels.csv"
    change(_wine_rows(10)).to_csv(csv, index=False)  # type: ignore[operator]
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    result = runner.invoke(app, ["feedback", "tiny", str(csv), "--storage", str(db)])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest


def test_a_missing_file_and_a_named_label_column(wine: tuple[Path, Path], tmp_path: Path) -> None:
    _, db = wine
    result = runner.invoke(
        app, ["feedback", "tiny", str(tmp_path / "no.csv"), "--storage", str(db)]
    )
    assert result.exit_code == 2 and "does not exist" in result.output
    csv = tmp_path / "labels.csv"
    _wine_rows(5).rename(columns={"label": "cultivar"}).to_csv(csv, index=False)
    result = runner.invoke(
        app, ["feedback", "tiny", str(csv), "--label", "cultivar", "--storage", str(db)]
    )
    assert result.exit_code == 0, result.output


@pytest.mark.slow
def test_feedbacks_at_once_each_become_a_version_and_none_is_lost(
    wine: tuple[Path, Path], tmp_path: Path
) -> None:
    import subprocess
    import sys

    _, db = wine
    files = []
    for i in range(3):
        csv = tmp_path / f"labels{i}.csv"
        _wine_rows(10 + i, seed=i).to_csv(csv, index=False)
        files.append(csv)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "payoff", "feedback", "tiny", str(f), "--storage", str(db)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for f in files
    ]
    for p in procs:
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0, out
    stored = payoff.load("tiny", db).optuna.user_attrs["feedback"]
    assert sorted(b["data_version"] for b in stored) == [1, 2, 3]
    assert sorted(b["n_rows"] for b in stored) == [10, 11, 12]


@pytest.mark.slow
def test_killing_feedback_at_any_moment_loses_no_batch(
    wine: tuple[Path, Path], tmp_path: Path
) -> None:
    import random
    import signal
    import subprocess
    import sys

    _, db = wine
    rng = random.Random(0)
    for attempt, delay in enumerate([rng.uniform(1.0, 4.0) for _ in range(2)] + [120.0]):
        # A big batch, so that the kill lands in reading, checking and writing alike; new
        # rows each time, or a batch stored before the kill would be refused as repeated.
        csv = tmp_path / f"labels{attempt}.csv"
        _wine_rows(20_000, seed=attempt).to_csv(csv, index=False)
        cmd = [sys.executable, "-m", "payoff", "feedback", "tiny", str(csv), "--storage", str(db)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        stored = payoff.load("tiny", db).optuna.user_attrs.get("feedback", [])
        # Each stored batch is whole, and versions count up without a gap.
        assert [b["data_version"] for b in stored] == list(range(1, len(stored) + 1))
        assert all(b["n_rows"] == len(b["records"]) == 20_000 for b in stored)
    assert proc.returncode == 0  # the last one was given time to finish
    assert stored


def test_rows_that_would_leak_are_refused_with_their_counts(
    wine: tuple[Path, Path], tmp_path: Path
) -> None:
    from payoff.study._builtin import task_of

    path, db = wine
    task = task_of(payoff.load_config(path))
    data = load_wine(as_frame=True)
    names = dict(enumerate(data.target_names))

    def labelled(frame: pd.DataFrame, y: np.ndarray) -> pd.DataFrame:
        return frame.assign(label=[task.classes[i] for i in y])

    fresh = _wine_rows(5, seed=7)
    leaky = pd.concat(
        [
            labelled(task.raw_train.head(2), task.y_train[:2]),
            labelled(task.raw_test.head(3), task.y_test[:3]),
            fresh,
            fresh.head(1),  # the same new row twice
        ]
    )
    assert set(names.values()) >= set(task.classes)
    csv = tmp_path / "leaky.csv"
    leaky.to_csv(csv, index=False)
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    result = runner.invoke(app, ["feedback", "tiny", str(csv), "--storage", str(db)])
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert "of 11 rows, 2 encode like a training row" in said
    assert "3 are in the test split" in said and "1 repeat an earlier row" in said
    assert "Nothing was stored" in said
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before
    # The new rows alone are welcome; sent again, they repeat stored feedback.
    fresh.to_csv(csv, index=False)
    assert runner.invoke(app, ["feedback", "tiny", str(csv), "--storage", str(db)]).exit_code == 0
    again = runner.invoke(app, ["feedback", "tiny", str(csv), "--storage", str(db)])
    assert again.exit_code == 2 and "5 encode like a training row" in again.output
