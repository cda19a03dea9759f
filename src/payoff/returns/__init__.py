"""Returns: quality metrics and the inference latency/throughput benchmark."""

from __future__ import annotations

from payoff.returns._costs import cost_matrix
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
    "cost_matrix",
    "measure_inference",
    "regression_metrics",
]
