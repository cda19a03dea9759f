"""The data lever: how many labelled examples to train on, and what they cost."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from payoff.levers._base import Lever, LeverPrices, RunPlan

if TYPE_CHECKING:
    from payoff.tasks import Task


def n_examples(value: float, n_available: int) -> int:
    """Return the count a setting means: a fraction (<= 1) of ``n_available``, or a count."""
    n = round(value * n_available) if value <= 1 else int(value)
    return max(1, min(n, n_available))


class DataLever(Lever):
    name = "data"

    def apply(self, plan: RunPlan, value: Any, task: Task) -> RunPlan:
        return dataclasses.replace(plan, n_train=n_examples(float(value), len(task.y_train)))

    def cost_usd(self, plan: RunPlan, prices: LeverPrices) -> dict[str, float]:
        return {"cost_usd_labels": plan.n_train * prices.label_usd(plan.label_quality)}
