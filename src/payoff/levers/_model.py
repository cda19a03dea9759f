"""The model lever: a size preset (small, medium, large) or explicit widths."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from payoff.levers._base import Lever, RunPlan

if TYPE_CHECKING:
    from payoff.tasks import Task


def model_size(value: Any) -> str | tuple[int, ...]:
    """Return a size as the model builder takes it, from a setting or its encoding."""
    if isinstance(value, str) and "x" in value:
        return tuple(int(w) for w in value.split("x"))
    if isinstance(value, list | tuple):
        return tuple(int(w) for w in value)
    return str(value)


class ModelLever(Lever):
    name = "model"

    def encode(self, value: Any) -> str:
        # Optuna stores scalars only: widths [64, 32] become "64x32".
        size = model_size(value)
        return size if isinstance(size, str) else "x".join(str(w) for w in size)

    def apply(self, plan: RunPlan, value: Any, task: Task) -> RunPlan:
        return dataclasses.replace(plan, model_size=model_size(value))
