"""Tasks: dataset loaders, splits, cleaning, nested subsets and model builders."""

from __future__ import annotations

from payoff.tasks._datasets import DATASETS, check_dataset, load_task
from payoff.tasks._models import MODEL_FAMILIES, SIZE_PRESETS, build_model
from payoff.tasks._pretrained import (
    PRETRAINING_MODES,
    TRANSFER_MODES,
    PretrainCost,
    PretrainedEncoder,
    build_text_model,
    build_transfer_model,
    pretrain_encoder,
    public_encoder_cost,
)
from payoff.tasks._subset import nested_subset
from payoff.tasks._task import Modality, Task, TaskKind
from payoff.tasks._text import TEXT_ENCODER, TokenIds

__all__ = [
    "DATASETS",
    "MODEL_FAMILIES",
    "PRETRAINING_MODES",
    "SIZE_PRESETS",
    "TEXT_ENCODER",
    "TRANSFER_MODES",
    "Modality",
    "PretrainCost",
    "PretrainedEncoder",
    "Task",
    "TaskKind",
    "TokenIds",
    "build_model",
    "build_text_model",
    "build_transfer_model",
    "check_dataset",
    "load_task",
    "nested_subset",
    "pretrain_encoder",
    "public_encoder_cost",
]
