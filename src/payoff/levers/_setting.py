"""Levers whose setting only names how a run trains: precision, augmentation, parallelism,
pretraining and compression. Their costs and returns are measured on the trial."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from payoff.levers._base import Lever, RunPlan

if TYPE_CHECKING:
    from payoff.tasks import Task


class _FieldLever(Lever):
    """A lever that sets one field of the run plan."""

    field: str
    convert: type = str

    def apply(self, plan: RunPlan, value: Any, task: Task) -> RunPlan:
        return dataclasses.replace(plan, **{self.field: self.convert(value)})


class PrecisionLever(_FieldLever):
    name = "precision"
    field = "precision"


class AugmentationLever(_FieldLever):
    name = "augmentation"
    field = "augmentation"


class ParallelismLever(_FieldLever):
    name = "parallelism"
    field = "workers"
    convert = int


class PretrainingLever(_FieldLever):
    name = "pretraining"
    field = "pretraining"


class CompressionLever(_FieldLever):
    name = "compression"
    field = "compression"
