"""Quality metrics: which exist, which way is better, and their values."""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from payoff._errors import ConfigError

if TYPE_CHECKING:
    from payoff.tasks import TaskKind


@dataclass(frozen=True, slots=True)
class Metric:
    """A quality metric: its name, the task kind it scores, and which way is better."""

    name: str
    kind: TaskKind
    direction: Literal["maximize", "minimize"]


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", "classification", "maximize"),
        Metric("f1_macro", "classification", "maximize"),
        Metric("precision_macro", "classification", "maximize"),
        Metric("recall_macro", "classification", "maximize"),
        Metric("roc_auc", "classification", "maximize"),  # binary tasks only
        Metric("mse", "regression", "minimize"),
        Metric("mae", "regression", "minimize"),
        Metric("r2", "regression", "maximize"),
    )
}


def check_metric(name: str, kind: TaskKind, *, n_classes: int | None = None) -> None:
    """Check that a metric exists and fits the task.

    Args:
        name: The metric name, a key of ``METRICS``.
        kind: The task kind, ``"classification"`` or ``"regression"``.
        n_classes: The task's class count when known; ``roc_auc`` needs exactly 2.

    Raises:
        ConfigError: unknown metric (with the nearest name), a metric of the other
            kind, or ``roc_auc`` on a task that is not binary.
    """
    allowed = [m.name for m in METRICS.values() if m.kind == kind]
    if not allowed:
        raise ConfigError(f"task kind must be 'classification' or 'regression', got {kind!r}.")
    if name not in METRICS:
        match = difflib.get_close_matches(str(name), allowed, n=1, cutoff=0.4)
        hint = f" Did you mean {match[0]!r}?" if match else ""
        raise ConfigError(
            f"unknown metric {name!r}.{hint} Metrics for {kind}: {', '.join(allowed)}."
        )
    if METRICS[name].kind != kind:
        raise ConfigError(
            f"metric {name!r} scores {METRICS[name].kind} tasks, but this task is {kind}. "
            f"Use one of: {', '.join(allowed)}."
        )
    if name == "roc_auc" and n_classes is not None and n_classes != 2:
        raise ConfigError(
            f"metric 'roc_auc' needs a binary task, this one has {n_classes} classes. "
            "Use accuracy or f1_macro."
        )


def classification_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Score class probabilities (or scores) against true class indices.

    The predicted class is the argmax of each row. Precision, recall and F1 are
    macro-averaged over the classes present in ``y_true`` or the predictions, with 0
    where undefined. ``roc_auc`` is included only for two-class ``proba``; it is NaN
    when ``y_true`` holds a single class.

    Args:
        y_true: int class indices, shape ``(n,)``.
        proba: Class probabilities or scores, shape ``(n, k)``.

    Raises:
        ConfigError: the shapes do not match.
    """
    y_true = np.asarray(y_true).reshape(-1)
    proba = np.asarray(proba)
    if proba.ndim != 2 or proba.shape[0] != len(y_true) or proba.shape[1] < 2 or not len(y_true):
        raise ConfigError(
            f"proba must have shape (n, k>=2) with n == len(y_true) >= 1, "
            f"got proba {proba.shape} and y_true ({len(y_true)},)."
        )
    y_pred = proba.argmax(axis=1)
    # From the confusion matrix rather than sklearn.metrics: the training loop scores
    # every epoch, and sklearn's input validation made that half of a small trial's time.
    labels, codes = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
    k, n = len(labels), len(y_true)
    confusion = np.bincount(codes[:n] * k + codes[n:], minlength=k * k).reshape(k, k)
    hits = np.diag(confusion).astype(np.float64)
    predicted, actual = confusion.sum(axis=0), confusion.sum(axis=1)
    precision = np.divide(hits, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(hits, actual, out=np.zeros(k), where=actual > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros(k), where=both > 0)
    out = {
        "accuracy": float(hits.sum() / n),
        "f1_macro": float(f1.mean()),
        "precision_macro": float(precision.mean()),
        "recall_macro": float(recall.mean()),
    }
    if proba.shape[1] == 2:
        # With one class in y_true AUC is undefined; say so as NaN.
        out["roc_auc"] = _roc_auc(y_true == 1, proba[:, 1])
    return out


def _roc_auc(positive: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve: the Mann-Whitney statistic, ties counting half."""
    from scipy.stats import rankdata

    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(score)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def regression_metrics(y_true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Score predictions against true targets: mse, mae and r2.

    ``r2`` is NaN with fewer than two rows, where it is undefined.

    Args:
        y_true: Targets, shape ``(n,)``.
        pred: Predictions, shape ``(n,)`` or ``(n, 1)``.

    Raises:
        ConfigError: the shapes do not match.
    """
    y_true = np.asarray(y_true, dtype=np.float64).reshape(-1)
    pred = np.asarray(pred, dtype=np.float64)
    if pred.ndim == 2 and pred.shape[1] == 1:
        pred = pred[:, 0]
    if pred.shape != y_true.shape or not len(y_true):
        raise ConfigError(
            f"pred must have shape (n,) or (n, 1) with n == len(y_true) >= 1, "
            f"got pred {np.shape(pred)} and y_true ({len(y_true)},)."
        )
    err = pred - y_true
    sse = float(err @ err)
    spread = float(((y_true - y_true.mean()) ** 2).sum())
    if len(y_true) < 2:
        r2 = math.nan
    elif spread > 0:
        r2 = 1.0 - sse / spread
    else:  # constant targets: 1 for a perfect fit, else 0 (as scikit-learn)
        r2 = 1.0 if sse == 0 else 0.0
    return {"mse": sse / len(y_true), "mae": float(np.abs(err).mean()), "r2": r2}
