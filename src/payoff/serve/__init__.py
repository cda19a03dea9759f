"""Serve a trial's model: export it, answer predictions over HTTP, load-test and price it."""

from __future__ import annotations

from payoff.serve._app import create_app
from payoff.serve._export import ExportFormat, ExportResult, export_model
from payoff.serve._loadtest import (
    LoadtestResult,
    Scenario,
    ServingPrice,
    example_records,
    price_serving,
    run_loadtest,
    store_serving_price,
)
from payoff.serve._log import PredictionLog, read_log
from payoff.serve._model import TrainedModel, load_trained, resolve_trial
from payoff.serve._monitor import DriftReport, FeatureDrift, monitor, psi

__all__ = [
    "DriftReport",
    "FeatureDrift",
    "ExportFormat",
    "ExportResult",
    "LoadtestResult",
    "PredictionLog",
    "Scenario",
    "ServingPrice",
    "TrainedModel",
    "create_app",
    "example_records",
    "export_model",
    "load_trained",
    "monitor",
    "price_serving",
    "psi",
    "read_log",
    "resolve_trial",
    "run_loadtest",
    "store_serving_price",
]
