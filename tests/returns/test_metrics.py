from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from payoff._errors import ConfigError
from payoff.returns import (
    METRICS,
    Metric,
    check_metric,
    classification_metrics,
    regression_metrics,
)


def _proba(y_pred: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Random class probabilities whose argmax is y_pred."""
    p = rng.uniform(0.0, 0.5, size=(len(y_pred), k))
    p[np.arange(len(y_pred)), y_pred] = 1.0
    return p / p.sum(axis=1, keepdims=True)


def test_metric_table() -> None:
    assert set(METRICS) == {
        "accuracy",
        "f1_macro",
        "precision_macro",
        "recall_macro",
        "roc_auc",
        "mse",
        "mae",
        "r2",
    }
    assert METRICS["mse"] == Metric("mse", "regression", "minimize")
    assert METRICS["r2"].direction == "maximize"
    assert all(
        m.kind == "classification" for n, m in METRICS.items() if n in {"accuracy", "roc_auc"}
    )
    assert all(name == m.name for name, m in METRICS.items())


def test_multiclass_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 200)
    y_pred = np.where(rng.uniform(size=200) < 0.7, y, rng.integers(0, 4, 200))
    out = classification_metrics(y, _proba(y_pred, 4, rng))
    assert set(out) == {"accuracy", "f1_macro", "precision_macro", "recall_macro"}
    assert out["accuracy"] == pytest.approx(skm.accuracy_score(y, y_pred))
    assert out["f1_macro"] == pytest.approx(skm.f1_score(y, y_pred, average="macro"))
    assert out["precision_macro"] == pytest.approx(skm.precision_score(y, y_pred, average="macro"))
    assert out["recall_macro"] == pytest.approx(skm.recall_score(y, y_pred, average="macro"))
    assert all(isinstance(v, float) for v in out.values())


def test_binary_metrics_include_roc_auc() -> None:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 100)
    score = np.clip(y * 0.3 + rng.uniform(size=100) * 0.7, 0, 1)
    proba = np.column_stack([1 - score, score])
    out = classification_metrics(y, proba)
    assert out["roc_auc"] == pytest.approx(skm.roc_auc_score(y, score))
    assert out["accuracy"] == pytest.approx(skm.accuracy_score(y, (score > 0.5).astype(int)))


def test_degenerate_classification_does_not_warn() -> None:
    # One class only in y_true and never predicted correctly: zero_division=0, NaN AUC.
    y = np.zeros(5, dtype=np.int64)
    proba = np.tile([0.2, 0.8], (5, 1))
    out = classification_metrics(y, proba)
    assert out["accuracy"] == 0.0
    assert out["precision_macro"] == 0.0
    assert math.isnan(out["roc_auc"])


def test_regression_metrics_match_sklearn() -> None:
    rng = np.random.default_rng(2)
    y = rng.normal(size=50)
    pred = y + rng.normal(scale=0.3, size=50)
    out = regression_metrics(y, pred[:, None])
    assert out["mse"] == pytest.approx(skm.mean_squared_error(y, pred))
    assert out["mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    assert out["r2"] == pytest.approx(skm.r2_score(y, pred))
    assert math.isnan(regression_metrics(y[:1], pred[:1])["r2"])


@pytest.mark.parametrize("seed", range(5))
def test_metrics_match_sklearn_with_absent_classes_ties_and_constant_targets(seed: int) -> None:
    # Classes seen only in the truth or only in the predictions, tied AUC scores, and
    # regression targets that never vary: the edge cases sklearn defines.
    rng = np.random.default_rng(seed)
    y = rng.choice([0, 2, 5], size=30)
    y_pred = rng.choice([0, 1, 2], size=30)
    out = classification_metrics(y, _proba(y_pred, 6, rng))
    for name, fn in (
        ("f1_macro", skm.f1_score),
        ("precision_macro", skm.precision_score),
        ("recall_macro", skm.recall_score),
    ):
        assert out[name] == pytest.approx(fn(y, y_pred, average="macro", zero_division=0))
    yb = rng.integers(0, 2, 40)
    score = rng.integers(0, 4, 40) / 4.0  # many ties
    proba = np.column_stack([1 - score, score])
    assert classification_metrics(yb, proba)["roc_auc"] == pytest.approx(
        skm.roc_auc_score(yb, score)
    )
    flat = np.full(10, 3.0)
    assert regression_metrics(flat, flat)["r2"] == skm.r2_score(flat, flat) == 1.0
    noisy = flat + rng.normal(size=10)
    assert regression_metrics(flat, noisy)["r2"] == skm.r2_score(flat, noisy) == 0.0


def test_shape_mismatch() -> None:
    with pytest.raises(ConfigError, match="proba"):
        classification_metrics(np.zeros(3), np.zeros((4, 2)))
    with pytest.raises(ConfigError, match="pred"):
        regression_metrics(np.zeros(3), np.zeros(4))


class TestCheckMetric:
    def test_valid(self) -> None:
        for name, metric in METRICS.items():
            check_metric(name, metric.kind)
        check_metric("roc_auc", "classification", n_classes=2)

    def test_unknown_suggests_nearest_and_lists_allowed(self) -> None:
        with pytest.raises(ConfigError, match="Did you mean 'accuracy'") as err:
            check_metric("acuracy", "classification")
        assert "f1_macro" in str(err.value) and "mse" not in str(err.value)

    def test_wrong_kind(self) -> None:
        with pytest.raises(ConfigError, match="mse, mae, r2"):
            check_metric("accuracy", "regression")

    def test_roc_auc_needs_binary(self) -> None:
        with pytest.raises(ConfigError, match="binary"):
            check_metric("roc_auc", "classification", n_classes=3)
