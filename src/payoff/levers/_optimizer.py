"""The optimizer lever: sgd, adam, adamw or rmsprop."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from payoff.levers._base import Lever, RunPlan

if TYPE_CHECKING:
    from payoff.tasks import Task


class OptimizerLever(Lever):
    name = "optimizer"

    def apply(self, plan: RunPlan, value: Any, task: Task) -> RunPlan:
        return dataclasses.replace(plan, optimizer=str(value))
