"""Inference benchmark: latency at batch 1, throughput at a serving batch, model size."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from payoff._errors import ConfigError

if TYPE_CHECKING:
    import torch

# Throughput is timed over repeats until at least this much work, so timer
# resolution and one-off hiccups do not dominate.
_MIN_THROUGHPUT_S = 0.05
_MIN_THROUGHPUT_REPEATS = 3
_MAX_THROUGHPUT_REPEATS = 10_000


@dataclass(frozen=True, slots=True)
class InferenceReading:
    """What a model costs to serve, measured on this machine.

    Attributes:
        latency_p50_s: Median wall time of one batch-1 call.
        latency_p95_s: 95th percentile wall time of one batch-1 call.
        throughput_per_s: Rows per second at ``batch_size``.
        batch_size: Rows per call in the throughput measurement.
        n_params: Number of parameters.
        size_bytes: Size of the serialised ``state_dict`` (``torch.save``).
    """

    latency_p50_s: float
    latency_p95_s: float
    throughput_per_s: float
    batch_size: int
    n_params: int
    size_bytes: int


def _synchronize(device: torch.device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_inference(
    model: torch.nn.Module,
    X: np.ndarray,
    *,
    batch_size: int = 256,
    n_latency: int = 100,
    warmup: int = 5,
) -> InferenceReading:
    """Measure a model's inference latency, throughput and size.

    Runs in eval mode under ``torch.inference_mode`` on the model's device, then
    restores the model's previous train/eval mode. Latency is the wall time of each
    of ``n_latency`` batch-1 calls cycling through the rows of ``X`` (after
    ``warmup`` calls); throughput is rows per second at ``batch_size`` (rows of ``X``
    repeated if it has fewer) over repeats totalling at least 0.05 s.

    Args:
        model: The model; it takes float32 ``(batch, n_features)``.
        X: Input rows, shape ``(n, n_features)``; typically the test split.
        batch_size: Rows per call for the throughput measurement.
        n_latency: Number of timed batch-1 calls.
        warmup: Untimed calls before each measurement.

    Raises:
        ConfigError: ``X`` is empty or not two-dimensional, or a count is below 1.
    """
    import torch

    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] == 0:
        raise ConfigError(f"X must be a non-empty (n, n_features) array, got shape {X.shape}.")
    for arg, value in (("batch_size", batch_size), ("n_latency", n_latency)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{arg} must be an integer >= 1, got {value!r}.")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ConfigError(f"warmup must be an integer >= 0, got {warmup!r}.")

    first = next(model.parameters(), None)
    device = first.device if first is not None else torch.device("cpu")
    rows = torch.tensor(np.ascontiguousarray(X, dtype=np.float32), device=device)
    batch = rows[torch.arange(batch_size, device=device) % rows.shape[0]]
    n_rows = rows.shape[0]

    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for i in range(warmup):
                model(rows[i % n_rows : i % n_rows + 1])
            _synchronize(device)
            latencies = np.empty(n_latency, dtype=np.float64)
            for i in range(n_latency):
                j = i % n_rows
                start = time.perf_counter()
                model(rows[j : j + 1])
                _synchronize(device)
                latencies[i] = time.perf_counter() - start

            for _ in range(min(warmup, 1)):
                model(batch)
            _synchronize(device)
            n_repeats = 0
            start = time.perf_counter()
            elapsed = 0.0
            while n_repeats < _MAX_THROUGHPUT_REPEATS and (
                n_repeats < _MIN_THROUGHPUT_REPEATS or elapsed < _MIN_THROUGHPUT_S
            ):
                model(batch)
                _synchronize(device)
                n_repeats += 1
                elapsed = time.perf_counter() - start
    finally:
        model.train(was_training)

    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return InferenceReading(
        latency_p50_s=float(np.percentile(latencies, 50)),
        latency_p95_s=float(np.percentile(latencies, 95)),
        throughput_per_s=batch_size * n_repeats / elapsed,
        batch_size=batch_size,
        n_params=int(sum(p.numel() for p in model.parameters())),
        size_bytes=len(buffer.getbuffer()),
    )
