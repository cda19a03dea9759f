"""Levers: one module each; a lever applies a setting to a run and prices what it buys."""

from __future__ import annotations

from payoff.levers._base import LabelGradePrice, Lever, LeverPrices, RunPlan
from payoff.levers._batch_size import BatchSizeLever
from payoff.levers._compute import ComputeLever
from payoff.levers._data import DataLever, n_examples
from payoff.levers._label_quality import NOISE_METHOD, LabelQualityLever, corrupt_labels
from payoff.levers._lr import LrLever
from payoff.levers._model import ModelLever, model_size
from payoff.levers._optimizer import OptimizerLever
from payoff.levers._setting import (
    AugmentationLever,
    CompressionLever,
    ParallelismLever,
    PrecisionLever,
    PretrainingLever,
)

LEVERS: dict[str, Lever] = {
    lever.name: lever
    for lever in (
        DataLever(),
        ModelLever(),
        ComputeLever(),
        OptimizerLever(),
        LrLever(),
        BatchSizeLever(),
        PrecisionLever(),
        AugmentationLever(),
        LabelQualityLever(),
        ParallelismLever(),
        PretrainingLever(),
        CompressionLever(),
    )
}

__all__ = [
    "LEVERS",
    "NOISE_METHOD",
    "AugmentationLever",
    "BatchSizeLever",
    "CompressionLever",
    "LabelGradePrice",
    "LabelQualityLever",
    "ParallelismLever",
    "PrecisionLever",
    "PretrainingLever",
    "corrupt_labels",
    "ComputeLever",
    "DataLever",
    "Lever",
    "LeverPrices",
    "LrLever",
    "ModelLever",
    "OptimizerLever",
    "RunPlan",
    "model_size",
    "n_examples",
]
