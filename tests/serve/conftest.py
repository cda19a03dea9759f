"""A tiny real study (wine, MLP) and its prediction service, shared by the serving tests."""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

import payoff
from payoff.serve import TrainedModel, create_app, example_records, load_trained
from tests.conftest import free_port, write_study

with warnings.catch_warnings():
    # Starlette asks for httpx2; the httpx it still supports is what is installed.
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

API_KEY = "s3cret"


@contextmanager
def serving(web: Any) -> Iterator[str]:
    """Serve the ASGI app ``web`` with a real uvicorn on a free loopback port; yield its URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(web, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


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
