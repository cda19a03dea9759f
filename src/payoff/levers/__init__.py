"""Levers: one module each; a lever applies a setting to a run and prices what it buys."""

from __future__ import annotations

from payoff.levers._base import Lever, LeverPrices, RunPlan
from payoff.levers._batch_size import BatchSizeLever
from payoff.levers._compute import ComputeLever
from payoff.levers._data import DataLever, n_examples
from payoff.levers._lr import LrLever
from payoff.levers._model import ModelLever, model_size
from payoff.levers._optimizer import OptimizerLever

LEVERS: dict[str, Lever] = {
    lever.name: lever
    for lever in (
        DataLever(),
        ModelLever(),
        ComputeLever(),
        OptimizerLever(),
        LrLever(),
        BatchSizeLever(),
    )
}

__all__ = [
    "LEVERS",
    "BatchSizeLever",
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
