"""A tiny real study (wine, MLP) and its prediction service, shared by the serving tests."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest

import payoff
from payoff.serve import TrainedModel, create_app, example_records, load_trained
from tests.conftest import write_study

with warnings.catch_warnings():
    # Starlette asks for httpx2; the httpx it still supports is what is installed.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

API_KEY = "s3cret"


@pytest.fixture(scope="package")
def served_study(tmp_path_factory: pytest.TempPathFactory) -> payoff.Study:
    tmp = tmp_path_factory.mktemp("serve")
    return payoff.run(
        write_study(tmp / "s.yaml", levers={"data": [1.0], "compute": {"epochs": [3]}}),
        storage=tmp / "p.db",
    )


@pytest.fixture(scope="package")
def trained(served_study: payoff.Study) -> TrainedModel:
    return load_trained(served_study, "best")


@pytest.fixture(scope="package")
def records(served_study: payoff.Study) -> list[dict[str, Any]]:
    return example_records(served_study, 32)


@pytest.fixture(scope="package")
def log_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("log") / "predictions.db"


@pytest.fixture(scope="package")
def client(served_study: payoff.Study, trained: TrainedModel, log_path: Path) -> TestClient:
    app = create_app(
        served_study,
        api_key=API_KEY,
        log_path=log_path,
        max_batch=50,
        max_body_bytes=200_000,
        model=trained,
    )
    return TestClient(app, raise_server_exceptions=False)
