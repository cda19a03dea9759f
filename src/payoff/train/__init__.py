"""Training: the loop, optimizers, early stopping, and compressing the trained model."""

from __future__ import annotations

from payoff.train._compress import (
    COMPRESSION_SETTINGS,
    Compressed,
    CompressionReading,
    CompressionSetting,
    compress,
    finetuner,
    measure_compression,
    parse_compression,
)
from payoff.train._loop import TrainResult, pick_device, predict, score, train_model, warm_up

__all__ = [
    "COMPRESSION_SETTINGS",
    "CompressionReading",
    "CompressionSetting",
    "Compressed",
    "TrainResult",
    "compress",
    "finetuner",
    "measure_compression",
    "parse_compression",
    "pick_device",
    "predict",
    "score",
    "train_model",
    "warm_up",
]
