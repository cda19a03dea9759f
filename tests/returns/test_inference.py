from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from payoff._errors import ConfigError
from payoff.returns import InferenceReading, measure_inference
from payoff.tasks import build_model


def test_small_mlp_reading_is_positive_and_fast() -> None:
    torch.manual_seed(0)
    model = build_model("mlp", "small", n_features=20, n_outputs=3)
    X = np.random.default_rng(0).normal(size=(40, 20)).astype(np.float32)
    start = time.perf_counter()
    reading = measure_inference(model, X, batch_size=64)
    assert time.perf_counter() - start < 0.5
    assert isinstance(reading, InferenceReading)
    assert 0 < reading.latency_p50_s <= reading.latency_p95_s
    assert reading.throughput_per_s > 0
    assert reading.batch_size == 64
    assert reading.n_params == 20 * 32 + 32 + 32 * 3 + 3
    assert reading.size_bytes > reading.n_params * 4  # fp32 weights plus pickle framing
    assert model.training  # the model's mode is restored


def test_eval_mode_during_measurement_and_restored() -> None:
    model = build_model("mlp", "small", n_features=4, n_outputs=1, dropout=0.5)
    model.eval()
    measure_inference(model, np.ones((3, 4), dtype=np.float64), n_latency=5, warmup=0)
    assert not model.training


def test_bad_input() -> None:
    model = build_model("linear", "small", n_features=4, n_outputs=1)
    with pytest.raises(ConfigError, match="non-empty"):
        measure_inference(model, np.zeros((0, 4)))
    with pytest.raises(ConfigError, match="batch_size"):
        measure_inference(model, np.zeros((2, 4)), batch_size=0)
