"""Outcomes: what a model's predictions do, priced by the value model's error costs.

Money follows the decisions a deployed model would make, not one accuracy figure:

- binary classification: the threshold on P(class 1) that maximises value on the
  validation split, applied to the test split (0.5 is always a candidate, so the chosen
  threshold's validation value is never below 0.5's);
- multi-class with a cost matrix: the class with the highest expected value under the
  predicted probabilities; without one, the most probable class;
- regression: the mean absolute error over the test split's error distribution.

An outcome is the share of correct test predictions (or the mean absolute error) and the
mean cost of one error, so ``value = correct x usd_per_correct - errors x cost``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from payoff.returns import cost_matrix

if TYPE_CHECKING:
    from payoff.analysis._value import ValueModel
    from payoff.study import StudyRecord

# Above this many distinct validation probabilities, thresholds are tried at quantiles.
_MAX_CANDIDATES = 2000


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one trial's (or rule's) predictions did on the test split.

    Attributes:
        value_metric: Share of correct predictions (classification) or the mean absolute
            error (regression), under ``rule``.
        error_usd_per_prediction: Errors' cost averaged over every prediction (0 for a
            regression: its cost is per unit of error).
        threshold: The decision threshold on P(class 1), binary classification only.
        val_value_usd: Validation value a prediction at ``threshold`` (NaN otherwise).
        val_value_at_half_usd: The same at 0.5, for comparison.
        rule: How predictions became decisions, in words.
    """

    value_metric: float
    error_usd_per_prediction: float
    threshold: float | None
    val_value_usd: float
    val_value_at_half_usd: float
    rule: str
    # The value of each call given each truth (truth x call), when expected value decides.
    gain: np.ndarray | None = field(default=None, repr=False, compare=False)

    def decide(self, out: np.ndarray) -> np.ndarray:
        """Return the class index ``rule`` calls for each row of class probabilities."""
        out = np.asarray(out)
        if self.threshold is not None:
            return (out[:, 1] >= self.threshold).astype(int)
        if self.gain is not None:
            return np.argmax(out @ self.gain, axis=1)
        return np.argmax(out, axis=1)

    @property
    def error_cost_usd(self) -> float:
        """The mean cost of one error (0 when there is none)."""
        errors = 1.0 - self.value_metric
        return self.error_usd_per_prediction / errors if errors > 0 else 0.0


def _value_of(y: np.ndarray, pred: np.ndarray, usd_per_correct: float, costs: np.ndarray) -> Any:
    """Return the mean value a prediction of ``pred`` (rows, or candidates x rows)."""
    return np.where(pred == y, usd_per_correct, -costs[y, pred]).mean(axis=-1)


def _outcome_on_test(y: np.ndarray, pred: np.ndarray, costs: np.ndarray) -> tuple[float, float]:
    wrong = pred != y
    return float(1.0 - wrong.mean()), float(np.where(wrong, costs[y, pred], 0.0).mean())


def choose_threshold(
    y_val: np.ndarray, p_val: np.ndarray, *, usd_per_correct: float, costs: np.ndarray
) -> tuple[float, float, float]:
    """Return the threshold on P(class 1) with the highest validation value, its value and
    0.5's value (ties go to the threshold nearest 0.5)."""
    y = np.asarray(y_val, dtype=int)
    p = np.asarray(p_val, dtype=float)
    cand = np.unique(p)
    if cand.size > _MAX_CANDIDATES:
        cand = np.unique(np.quantile(p, np.linspace(0, 1, _MAX_CANDIDATES)))
    cand = np.unique(np.concatenate([cand, [0.5, np.inf]]))
    pred = (p[None, :] >= cand[:, None]).astype(int)
    values = _value_of(y[None, :], pred, usd_per_correct, costs)
    at_half = float(values[np.searchsorted(cand, 0.5)])
    best = values.max()
    ties = np.flatnonzero(np.isclose(values, best, rtol=0, atol=1e-12))
    pick = ties[np.argmin(np.abs(cand[ties] - 0.5))]
    return float(cand[pick]), float(values[pick]), at_half


def classification_outcome(
    y_val: np.ndarray,
    out_val: np.ndarray,
    y_test: np.ndarray,
    out_test: np.ndarray,
    *,
    usd_per_correct: float,
    costs: np.ndarray,
    priced: bool,
    positive: str = "class 1",
) -> Outcome:
    """Return the test outcome of a classifier's probabilities under the value model.

    ``priced``: whether the value model prices decisions (else the most probable class);
    ``positive``: the name of class 1, for the rule's words.
    """
    y_test = np.asarray(y_test, dtype=int)
    n = costs.shape[0]
    if priced and n == 2 and out_test.ndim == 2 and out_test.shape[1] == 2:
        t, val_value, at_half = choose_threshold(
            y_val, out_val[:, 1], usd_per_correct=usd_per_correct, costs=costs
        )
        pred = (out_test[:, 1] >= t).astype(int)
        acc, epp = _outcome_on_test(y_test, pred, costs)
        rule = (
            f"never {positive!r}: no threshold on P({positive!r}) adds value on validation"
            if math.isinf(t)
            else f"a threshold on P({positive!r}), the value-maximising one on validation"
        )
        return Outcome(acc, epp, t, val_value, at_half, rule)
    if priced and not np.allclose(costs, costs[0, 1] * (1 - np.eye(n))):
        # Expected value of calling each class: correct with P(i), else its error's cost.
        gain = usd_per_correct * np.eye(n) - costs  # truth x call
        rule = "the class with the highest expected value under the cost matrix"
    else:
        gain, rule = None, "the most probable class"
    outcome = Outcome(math.nan, math.nan, None, math.nan, math.nan, rule, gain)
    acc, epp = _outcome_on_test(y_test, outcome.decide(out_test), costs)
    return dataclasses.replace(outcome, value_metric=acc, error_usd_per_prediction=epp)


def regression_outcome(y_test: np.ndarray, out_test: np.ndarray) -> Outcome:
    """Return a regression's mean absolute error over the test split."""
    err = np.abs(np.asarray(out_test, dtype=float).reshape(-1) - np.asarray(y_test, float))
    return Outcome(float(err.mean()), 0.0, None, math.nan, math.nan, "mean absolute error")


def constant_outcome(
    y_test: np.ndarray, call: float, *, kind: str, costs: np.ndarray | None = None
) -> Outcome:
    """Return the outcome of a rule that always predicts ``call`` (a class, or a number)."""
    if kind == "regression":
        err = np.abs(np.asarray(y_test, dtype=float) - call)
        return Outcome(float(err.mean()), 0.0, None, math.nan, math.nan, f"always {call:.4g}")
    assert costs is not None, "a constant class needs the cost matrix"
    y = np.asarray(y_test, dtype=int)
    acc, epp = _outcome_on_test(y, np.full_like(y, int(call)), costs)
    return Outcome(acc, epp, None, math.nan, math.nan, f"always class {int(call)}")


def majority(y_train: np.ndarray, *, kind: str) -> float:
    """Return what a constant rule learns from training labels: majority class, or mean."""
    y = np.asarray(y_train)
    if kind == "regression":
        return float(y.astype(float).mean())
    values, counts = np.unique(y.astype(int), return_counts=True)
    return float(values[np.argmax(counts)])


def trial_outcomes(record: StudyRecord, model: ValueModel) -> dict[int, Outcome]:
    """Return the outcome of every trial of ``record`` that stored its predictions."""
    out: dict[int, Outcome] = {}
    priced = model.usd_per_correct > 0 or model.usd_per_error > 0 or model.error_costs is not None
    for number, p in record.predictions.items():
        if model.kind == "regression" or p.out_test.ndim == 1:
            out[number] = regression_outcome(p.y_test, p.out_test)
            continue
        costs = cost_matrix(
            p.out_test.shape[1],
            p.classes,
            usd_per_error=model.usd_per_error,
            error_costs=model.error_costs,
        )
        out[number] = classification_outcome(
            p.y_val,
            p.out_val,
            p.y_test,
            p.out_test,
            usd_per_correct=model.usd_per_correct,
            costs=costs,
            priced=priced,
            positive=str(p.classes[1]) if len(p.classes) == 2 else "class 1",
        )
    return out
