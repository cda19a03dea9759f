"""The label-quality lever: a grade of labels (price, error rate), wrong labels simulated."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np

from payoff.levers._base import Lever, LeverPrices, RunPlan

if TYPE_CHECKING:
    from payoff.tasks import Task

NOISE_METHOD = "simulated: a seeded share of training labels replaced by another class"


class LabelQualityLever(Lever):
    name = "label_quality"

    def apply(self, plan: RunPlan, value: Any, task: Task) -> RunPlan:
        return dataclasses.replace(plan, label_quality=str(value))

    def cost_usd(self, plan: RunPlan, prices: LeverPrices) -> dict[str, float]:
        return {"cost_usd_labels": plan.n_train * prices.label_usd(plan.label_quality)}


def corrupt_labels(
    y: np.ndarray, error_rate: float, *, n_classes: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return ``y`` with ``error_rate`` of its labels wrong, and which ones were changed.

    Classification labels move to another class drawn in proportion to the classes' shares
    of ``y`` (a confused labeller picks a common class more often); regression targets are
    swapped with another row's, so wrong targets keep the data's spread. Seeded.
    """
    rng = np.random.default_rng([seed, 7919])
    y = y.copy()
    n_wrong = int(round(error_rate * len(y)))
    wrong = np.sort(rng.choice(len(y), size=n_wrong, replace=False))
    if n_wrong == 0:
        return y, wrong
    if n_classes == 0:
        # Each chosen row takes the next chosen row's target: a cycle, never its own.
        y[wrong] = y[np.roll(wrong, 1)] if n_wrong > 1 else y[(wrong + 1) % len(y)]
        return y, wrong
    share = np.bincount(y, minlength=n_classes).astype(float) + 1.0  # never a zero share
    for i in wrong:
        p = share.copy()
        p[y[i]] = 0.0  # a wrong label is never the true class
        y[i] = rng.choice(n_classes, p=p / p.sum())
    return y, wrong
