"""Training: the loop, optimizers, early stopping."""

from __future__ import annotations

from payoff.train._loop import TrainResult, pick_device, predict, score, train_model, warm_up

__all__ = ["TrainResult", "pick_device", "predict", "score", "train_model", "warm_up"]
