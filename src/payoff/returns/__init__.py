"""Returns: quality metrics and the inference latency/throughput benchmark."""

from __future__ import annotations

from payoff.returns._inference import InferenceReading, measure_inference
from payoff.returns._metrics import (
    METRICS,
    Metric,
    check_metric,
    classification_metrics,
    regression_metrics,
)

__all__ = [
    "METRICS",
    "InferenceReading",
    "Metric",
    "check_metric",
    "classification_metrics",
    "measure_inference",
    "regression_metrics",
]
