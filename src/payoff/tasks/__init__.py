"""Tasks: dataset loaders, splits, cleaning, nested subsets and model builders."""

from __future__ import annotations

from payoff.tasks._datasets import DATASETS, check_dataset, load_task
from payoff.tasks._models import MODEL_FAMILIES, SIZE_PRESETS, build_model
from payoff.tasks._subset import nested_subset
from payoff.tasks._task import Task, TaskKind

__all__ = [
    "DATASETS",
    "MODEL_FAMILIES",
    "SIZE_PRESETS",
    "Task",
    "TaskKind",
    "build_model",
    "check_dataset",
    "load_task",
    "nested_subset",
]
