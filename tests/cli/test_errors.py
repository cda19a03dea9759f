"""Broken study files: exit code 2, a message that says what to fix, storage untouched."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from payoff.cli import app
from tests.conftest import write_study

runner = CliRunner()

BROKEN: list[tuple[str, dict[str, object], str]] = [
    ("unknown top-level key", {"levrs": {"data": [0.5]}}, "Did you mean 'levers'?"),
    ("unknown lever", {"levers": {"optimzer": ["adam"]}}, "Did you mean 'optimizer'?"),
    ("wrong type", {"seeds": "three"}, "seeds"),
    ("empty lever list", {"levers": {"data": []}}, "levers.data: is empty"),
    ("negative label price", {"labels": {"usd_per_example": -1}}, "labels.usd_per_example"),
    (
        "missing data file",
        {"task": {"dataset": "csv:/nowhere/data.csv", "label": "y"}},
        "/nowhere/data.csv",
    ),
    ("unknown dataset", {"task": {"dataset": "sklearn:digts"}}, "sklearn:digits"),
    (
        "unknown metric",
        {"task": {"dataset": "sklearn:wine", "metric": "acuracy"}},
        "Did you mean 'accuracy'?",
    ),
    ("metric of the wrong kind", {"task": {"dataset": "sklearn:wine", "metric": "mse"}}, "mse"),
    ("bad optimizer", {"levers": {"optimizer": ["adm"]}}, "Did you mean 'adam'?"),
    ("data neither fraction nor count", {"levers": {"data": [1.5]}}, "neither a fraction"),
    ("cnn on a table", {"task": {"dataset": "sklearn:wine", "model": "cnn"}}, "use model: mlp"),
    ("unknown hardware", {"hardware": "aws-m7i-lage"}, "aws-m7i-large"),
    (
        "negative price override",
        {"prices": {"electricity_usd_per_kwh": -0.1}},
        "electricity_usd_per_kwh",
    ),
    ("random without n_trials", {"design": "random"}, "n_trials"),
    ("no task", {"task": None}, "task: required but missing"),
    (
        "both dataset and function",
        {"task": {"dataset": "sklearn:wine", "function": "m:f"}},
        "exactly one of",
    ),
    ("bad study name", {"study": "my study"}, "study"),
    (
        "a class the task lacks in error costs",
        {"value": {"error_costs_usd": {"malignant": {"class_0": 100}}}},
        "value.error_costs_usd names class 'malignant', which the task does not have",
    ),
    (
        "a current system's accuracy without its error mix",
        {"value": {"error_costs_usd": {"1": {"0": 100}}, "baseline": 0.9}},
        "give their mix too",
    ),
    (
        "roc_auc on a three-class task",
        {"task": {"dataset": "sklearn:wine", "metric": "roc_auc"}},
        "metric 'roc_auc' needs a binary task, this one has 3 classes",
    ),
    ("a lever value twice", {"levers": {"data": [0.5, 1.0, 0.5]}}, "listed twice"),
    ("an infinite data setting", {"levers": {"data": [float("inf")]}}, "not a finite number"),
    ("an infinite learning rate lever", {"levers": {"lr": [float("inf")]}}, "not a finite"),
    ("a NaN learning rate", {"train": {"lr": float("nan")}}, "train.lr"),
    ("absurd epochs", {"levers": {"compute": [10_000_000]}}, "largest sane setting"),
    ("absurd batch size", {"levers": {"batch_size": [10_000_000]}}, "largest sane setting"),
    ("a hundred million seeds", {"seeds": 100_000_000}, "seeds"),
    ("zero seeds", {"seeds": 0}, "seeds"),
    ("negative horizon", {"value": {"horizon_months": -1}}, "horizon_months"),
    ("a pilot with zero seeds", {"design": "pilot", "pilot": {"seeds": 0}}, "pilot"),
    ("data as a word", {"levers": {"data": ["half"]}}, "levers.data"),
    ("a dropout of one", {"train": {"dropout": 1.0}}, "train.dropout"),
    (
        "a target in percent",
        {"task": {"dataset": "sklearn:wine"}, "target": {"accuracy": 80}},
        "target.accuracy: 80 is outside [0, 1], where accuracy lies; for 80% write 0.8",
    ),
    (
        "data count above the training split",
        {"task": {"dataset": "sklearn:wine"}, "levers": {"data": [50, 5000]}},
        "levers.data: 5000 is more than the 124 examples of sklearn:wine's training split",
    ),
]


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A storage holding one real finished study, to prove broken files leave it alone."""
    tmp = tmp_path_factory.mktemp("storage")
    study = write_study(tmp / "ok.yaml", levers={"data": [0.5]}, train={"epochs": 1})
    db = tmp / "payoff.db"
    result = runner.invoke(app, ["run", str(study), "--storage", str(db)])
    assert result.exit_code == 0, result.output
    return db


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(("name", "overrides", "expected"), BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_study_exits_2_with_a_clear_message(
    storage: Path, tmp_path: Path, name: str, overrides: dict[str, object], expected: str
) -> None:
    before = _digest(storage)
    path = write_study(tmp_path / "broken.yaml", **overrides)
    result = runner.invoke(app, ["run", str(path), "--storage", str(storage)])
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert "Traceback" not in result.output
    assert _digest(storage) == before


def test_read_only_storage_exits_2_and_stays_as_it_was(storage: Path, tmp_path: Path) -> None:
    before = _digest(storage)
    # More data for the stored study: a run that must write, on a storage opened read-only.
    path = write_study(tmp_path / "more.yaml", levers={"data": [0.5, 0.75]}, train={"epochs": 1})
    url = f"sqlite:///file:{storage}?mode=ro&uri=true"
    result = runner.invoke(app, ["run", str(path), "--storage", url])
    assert result.exit_code == 2, result.output
    assert "the study's storage is read-only" in result.output
    assert _digest(storage) == before


def test_a_storage_that_is_not_sqlite_exits_2(tmp_path: Path) -> None:
    notes = tmp_path / "notes.db"
    notes.write_text("these are notes, not a database")
    result = runner.invoke(app, ["trials", "tiny", "--storage", str(notes)])
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert "file is not a database (not an SQLite file, or a damaged one)." in said
    assert "[SQL:" not in said
    assert notes.read_text() == "these are notes, not a database"


def test_not_yaml_exits_2(storage: Path, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("study: x\ntask: {dataset: [unclosed\n")
    result = runner.invoke(app, ["run", str(path), "--storage", str(storage)])
    assert result.exit_code == 2
    assert "not valid YAML at line" in result.output


def test_unknown_study_in_trials_exits_2_and_creates_nothing(tmp_path: Path) -> None:
    db = tmp_path / "none.db"
    result = runner.invoke(app, ["trials", "nope", "--storage", str(db)])
    assert result.exit_code == 2
    assert "no storage" in result.output
    assert not db.exists()


def test_unknown_study_name_suggests_the_nearest(storage: Path) -> None:
    result = runner.invoke(app, ["trials", "tiyn", "--storage", str(storage)])
    assert result.exit_code == 2
    assert "Did you mean 'tiny'?" in result.output


def test_changed_task_under_the_same_name_is_refused(storage: Path, tmp_path: Path) -> None:
    before = _digest(storage)
    path = write_study(tmp_path / "s.yaml", task={"dataset": "sklearn:breast_cancer"})
    result = runner.invoke(app, ["run", str(path), "--storage", str(storage)])
    assert result.exit_code == 2
    assert "task.dataset: 'sklearn:wine' -> 'sklearn:breast_cancer'" in " ".join(
        result.output.split()
    )
    assert _digest(storage) == before
