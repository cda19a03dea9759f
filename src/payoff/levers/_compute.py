"""The compute lever: how many epochs to train (early stopping may use fewer)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from payoff.levers._base import Lever, RunPlan

if TYPE_CHECKING:
    from payoff.tasks import Task


class ComputeLever(Lever):
    name = "compute"

    def apply(self, plan: RunPlan, value: Any, task: Task) -> RunPlan:
        return dataclasses.replace(plan, epochs=int(value))
