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
    from sklearn import metrics

    y_true = np.asarray(y_true).reshape(-1)
    proba = np.asarray(proba)
    if proba.ndim != 2 or proba.shape[0] != len(y_true) or proba.shape[1] < 2 or not len(y_true):
        raise ConfigError(
            f"proba must have shape (n, k>=2) with n == len(y_true) >= 1, "
            f"got proba {proba.shape} and y_true ({len(y_true)},)."
        )
    y_pred = proba.argmax(axis=1)
    out = {
        "accuracy": float(metrics.accuracy_score(y_true, y_pred)),
        "f1_macro": float(metrics.f1_score(y_true, y_pred, average="macro", zero_division=0)),
        "precision_macro": float(
            metrics.precision_score(y_true, y_pred, average="macro", zero_division=0)
        ),
        "recall_macro": float(
            metrics.recall_score(y_true, y_pred, average="macro", zero_division=0)
        ),
    }
    if proba.shape[1] == 2:
        # With one class in y_true AUC is undefined (sklearn would warn); say so as NaN.
        out["roc_auc"] = (
            float(metrics.roc_auc_score(y_true, proba[:, 1]))
            if len(np.unique(y_true)) == 2
            else math.nan
        )
    return out


def regression_metrics(y_true: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Score predictions against true targets: mse, mae and r2.

    ``r2`` is NaN with fewer than two rows, where it is undefined.

    Args:
        y_true: Targets, shape ``(n,)``.
        pred: Predictions, shape ``(n,)`` or ``(n, 1)``.

    Raises:
        ConfigError: the shapes do not match.
    """
    from sklearn import metrics

    y_true = np.asarray(y_true, dtype=np.float64).reshape(-1)
    pred = np.asarray(pred, dtype=np.float64)
    if pred.ndim == 2 and pred.shape[1] == 1:
        pred = pred[:, 0]
    if pred.shape != y_true.shape or not len(y_true):
        raise ConfigError(
            f"pred must have shape (n,) or (n, 1) with n == len(y_true) >= 1, "
            f"got pred {np.shape(pred)} and y_true ({len(y_true)},)."
        )
    return {
        "mse": float(metrics.mean_squared_error(y_true, pred)),
        "mae": float(metrics.mean_absolute_error(y_true, pred)),
        "r2": float(metrics.r2_score(y_true, pred)) if len(y_true) >= 2 else math.nan,
    }
