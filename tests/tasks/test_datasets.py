from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from payoff._errors import ConfigError
from payoff.tasks import DATASETS, Task, check_dataset, load_task

N_ROWS = 120


def _mixed_frame() -> pd.DataFrame:
    """A small table with numeric and categorical features and a string label."""
    rng = np.random.default_rng(7)
    size = rng.normal(10.0, 3.0, N_ROWS)
    colour = rng.choice(["red", "green", "blue"], N_ROWS)
    flag = rng.choice([True, False], N_ROWS)
    count = rng.integers(0, 5, N_ROWS)
    species = np.where(size + (colour == "red") * 4 > 11, "big", "small").astype(object)
    frame = pd.DataFrame(
        {"size": size, "colour": colour, "flag": flag, "count": count, "species": species}
    )
    frame.loc[[3, 17, 40], "species"] = None  # 3 missing labels
    frame.loc[[5, 6], "size"] = np.nan  # 2 missing numeric values
    frame.loc[[8], "colour"] = None  # 1 missing categorical value
    return frame


@pytest.fixture(params=["csv", "parquet"])
def table_spec(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    frame = _mixed_frame()
    path = tmp_path / f"table.{request.param}"
    if request.param == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return f"{request.param}:{path}"


@pytest.mark.parametrize("spec", DATASETS)
def test_sklearn_datasets_load(spec: str) -> None:
    task = load_task(spec)
    assert isinstance(task, Task)
    assert task.name == spec
    n_total = len(task.y_train) + len(task.y_val) + len(task.y_test)
    assert task.notes["n_rows"] == n_total
    assert task.notes["n_dropped_missing_label"] == 0
    for X, y in (
        (task.X_train, task.y_train),
        (task.X_val, task.y_val),
        (task.X_test, task.y_test),
    ):
        assert X.dtype == np.float32
        assert X.shape == (len(y), task.n_features)
        assert np.isfinite(X).all()
    assert len(task.feature_names) == task.n_features  # all-numeric: no one-hot
    # Standardised on train.
    assert np.allclose(task.X_train.mean(axis=0), 0, atol=1e-4)
    if spec == "sklearn:diabetes":
        assert task.kind == "regression"
        assert task.y_train.dtype == np.float32
        assert task.classes == () and task.n_classes == 0
    else:
        assert task.kind == "classification"
        assert task.y_train.dtype == np.int64
        assert set(np.unique(task.y_train)) == set(range(task.n_classes))
    assert abs(len(task.y_test) / n_total - 0.15) < 0.01
    assert abs(len(task.y_val) / n_total - 0.15) < 0.01


def test_dataset_specifics() -> None:
    digits = load_task("sklearn:digits")
    assert digits.image_shape == (1, 8, 8)
    assert digits.n_features == 64 and digits.n_classes == 10
    assert digits.classes == tuple(str(i) for i in range(10))
    cancer = load_task("sklearn:breast_cancer")
    assert cancer.classes == ("malignant", "benign")
    assert cancer.image_shape is None
    assert load_task("sklearn:wine").n_classes == 3


def test_split_is_deterministic_and_seeded() -> None:
    a = load_task("sklearn:wine", seed=3)
    b = load_task("sklearn:wine", seed=3)
    c = load_task("sklearn:wine", seed=4)
    for name in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test"):
        assert np.array_equal(getattr(a, name), getattr(b, name))
    assert not np.array_equal(a.X_test, c.X_test)
    assert a.notes["split"]["seed"] == 3


def test_split_is_stratified() -> None:
    task = load_task("sklearn:digits")
    full = np.bincount(np.concatenate([task.y_train, task.y_val, task.y_test]), minlength=10) / (
        len(task.y_train) + len(task.y_val) + len(task.y_test)
    )
    for y in (task.y_train, task.y_val, task.y_test):
        assert np.abs(np.bincount(y, minlength=10) / len(y) - full).max() < 0.01
    assert task.notes["split"]["stratified"] is True


def test_returned_arrays_are_private_copies() -> None:
    a = load_task("sklearn:wine")
    a.X_train[:] = 0
    a.notes["split"]["seed"] = 99
    b = load_task("sklearn:wine")
    assert b.X_train.any()
    assert b.notes["split"]["seed"] == 0


def test_file_table_is_cleaned_encoded_and_counted(table_spec: str) -> None:
    task = load_task(table_spec, label="species", validation=0.2, test=0.2, seed=1)
    assert task.kind == "classification"
    assert task.classes == ("big", "small")
    assert task.feature_names == ("size", "colour", "flag", "count")
    notes = task.notes
    assert notes["n_rows"] == N_ROWS
    assert notes["n_dropped_missing_label"] == 3
    assert notes["n_imputed_values"] == 3
    assert notes["n_imputed_by_column"] == {"size": 2, "colour": 1}
    assert notes["imputation"] == "median (numeric), most_frequent (categorical)"
    assert {"validation": 0.2, "test": 0.2, "seed": 1}.items() <= notes["split"].items()
    assert notes["categorical_columns"] == ["colour", "flag"]
    assert len(task.y_train) + len(task.y_val) + len(task.y_test) == N_ROWS - 3
    # size, count, 3 colours, 2 flags
    assert task.n_features == 2 + 3 + 2
    for X in (task.X_train, task.X_val, task.X_test):
        assert X.dtype == np.float32 and np.isfinite(X).all()

    # The preprocessor serves raw rows, unseen categories and missing values included,
    # and survives pickling.
    raw = pd.DataFrame(
        {"size": [9.5, np.nan], "colour": ["purple", None], "flag": [True, False], "count": [1, 2]}
    )
    served = pickle.loads(pickle.dumps(task.preprocessor)).transform(raw)
    assert served.shape == (2, task.n_features)
    assert np.isfinite(served).all()


def test_file_regression_and_integer_float_labels(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=80)
    frame = pd.DataFrame(
        {"x": x, "target": 2.0 * x + rng.normal(scale=0.1, size=80), "grade": (x > 0) * 1.0 + 1}
    )
    path = tmp_path / "reg.csv"
    frame.to_csv(path, index=False)
    reg = load_task(f"csv:{path}", label="target")
    assert reg.kind == "regression"
    assert reg.y_train.dtype == np.float32 and reg.classes == ()
    assert reg.notes["split"]["stratified"] is False
    # A float label with few integer values is a class label, rendered without ".0".
    cls = load_task(f"csv:{path}", label="grade")
    assert cls.kind == "classification"
    assert cls.classes == ("1", "2")


def test_cache_sees_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    frame = _mixed_frame()
    frame.to_csv(path, index=False)
    first = load_task(f"csv:{path}", label="species")
    frame.iloc[:60].to_csv(path, index=False)
    second = load_task(f"csv:{path}", label="species")
    assert first.notes["n_rows"] == N_ROWS and second.notes["n_rows"] == 60


def test_too_few_rows_per_class(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": np.arange(30.0), "y": ["a"] * 29 + ["b"]})
    path = tmp_path / "rare.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(ConfigError, match="'b': 1"):
        load_task(f"csv:{path}", label="y")


def test_bad_split_fractions() -> None:
    with pytest.raises(ConfigError, match="validation"):
        load_task("sklearn:wine", validation=1.2)
    with pytest.raises(ConfigError, match="validation \\+ test"):
        load_task("sklearn:wine", validation=0.5, test=0.5)


def test_zero_validation_gives_empty_split() -> None:
    task = load_task("sklearn:wine", validation=0.0)
    assert task.X_val.shape == (0, task.n_features)
    assert len(task.y_val) == 0


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    path.write_text("not parquet")
    with pytest.raises(ConfigError, match="cannot read parquet"):
        check_dataset(f"parquet:{path}", label="y")


class TestCheckDataset:
    def test_valid_specs_pass(self, table_spec: str) -> None:
        for spec in DATASETS:
            check_dataset(spec)
        check_dataset(table_spec, label="species")

    def test_unknown_name_suggests_nearest(self) -> None:
        with pytest.raises(ConfigError, match="Did you mean 'sklearn:digits'") as err:
            check_dataset("sklearn:digit")
        assert "sklearn:breast_cancer" in str(err.value)  # lists the allowed ones

    def test_unknown_scheme_suggests_nearest(self) -> None:
        with pytest.raises(ConfigError, match="Did you mean 'csv'"):
            check_dataset("cvs:/tmp/x.csv", label="y")

    def test_missing_scheme(self) -> None:
        with pytest.raises(ConfigError, match="'sklearn:wine'"):
            check_dataset("wine")
        with pytest.raises(ConfigError, match="'csv:data.csv'"):
            check_dataset("data.csv")

    def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match="does not exist"):
            check_dataset(f"csv:{tmp_path / 'nope.csv'}", label="y")

    def test_missing_label_argument(self, table_spec: str) -> None:
        with pytest.raises(ConfigError, match="needs a label"):
            check_dataset(table_spec)

    def test_missing_label_column_suggests_nearest(self, table_spec: str) -> None:
        with pytest.raises(ConfigError, match="Did you mean 'species'") as err:
            check_dataset(table_spec, label="specie")
        assert "'colour'" in str(err.value)  # lists the columns

    def test_label_for_builtin_is_rejected(self) -> None:
        with pytest.raises(ConfigError, match="Remove label"):
            check_dataset("sklearn:wine", label="target")


def test_integer_quantity_label_gets_a_regression_hint(tmp_path: Path) -> None:
    frame = pd.DataFrame({"x": np.arange(50.0), "price": np.arange(50) * 7})
    path = tmp_path / "prices.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(ConfigError, match="store it as float") as err:
        load_task(f"csv:{path}", label="price")
    assert "and 40 more" in str(err.value)


def test_unsupported_feature_type(tmp_path: Path) -> None:
    frame = _mixed_frame().assign(when=pd.Timestamp("2020-01-01"))
    path = tmp_path / "dates.parquet"
    frame.to_parquet(path)
    with pytest.raises(ConfigError, match="'when'"):
        load_task(f"parquet:{path}", label="species")
