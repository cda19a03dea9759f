"""The prediction service through FastAPI's TestClient: answers, refusals, metrics, log."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

import payoff
from payoff.serve import TrainedModel, read_log
from payoff.serve._log import PredictionLog
from tests.serve.conftest import API_KEY, TestClient

KEY = {"X-API-Key": API_KEY}


def _post(client: TestClient, body: Any, **headers: str) -> Any:
    return client.post(
        "/predict",
        content=json.dumps(body),
        headers={"content-type": "application/json", **KEY, **headers},
    )


def test_predicts_labels_and_probabilities(
    client: TestClient, records: list[dict[str, Any]], trained: TrainedModel, log_path: Path
) -> None:
    r = _post(client, {"records": records[:5]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["trial"] == trained.trial
    X = trained.task.X_test[:5]
    expected = trained.predict(X)
    assert body["predictions"] == [trained.task.classes[i] for i in expected.argmax(axis=1)]
    for probs, row in zip(body["probabilities"], expected, strict=True):
        assert list(probs) == list(trained.task.classes)
        assert list(probs.values()) == pytest.approx(list(row), abs=1e-4)
    logged, predictions = read_log(log_path, limit=5)
    assert predictions == body["predictions"] and logged == records[:5]
    # What users sent is readable by the service's owner only.
    assert log_path.stat().st_mode & 0o777 == 0o600


def test_a_log_in_a_folder_that_cannot_be_written_is_a_clear_error(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with pytest.raises(payoff.ConfigError, match="cannot open the prediction log"):
        PredictionLog(blocked / "log.db")
    not_a_log = tmp_path / "notes.db"
    not_a_log.write_text("these are notes, not SQLite")
    with pytest.raises(payoff.ConfigError, match="cannot open the prediction log"):
        PredictionLog(not_a_log)
    with pytest.raises(payoff.ConfigError, match="is not a payoff prediction log"):
        read_log(not_a_log)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: {**r, "colour": 1.0}, r"records\.0\.colour: Extra inputs are not permitted"),
        (
            lambda r: {**r, "alcohol": "strong"},
            r"records\.0\.alcohol: Input should be a valid number",
        ),
        (lambda r: {**r, "alcohol": True}, r"records\.0\.alcohol: Input should be a valid number"),
        (
            lambda r: {**r, "alcohol": float("nan")},
            r"records\.0\.alcohol: Input should be a finite",
        ),
        (
            lambda r: {**r, "alcohol": float("inf")},
            r"records\.0\.alcohol: Input should be a finite",
        ),
    ],
)
def test_bad_records_get_422(
    client: TestClient, records: list[dict[str, Any]], change: Any, message: str
) -> None:
    r = _post(client, {"records": [change(records[0])]})
    assert r.status_code == 422
    assert re.search(message, r.json()["message"]), r.json()


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"records": []}, 422, "at least 1 item"),
        ({"records": "all"}, 422, "valid list"),
        ({"rows": []}, 422, "records: Field required"),
        ("not an object", 422, "body"),
    ],
)
def test_bad_bodies(client: TestClient, body: Any, status: int, message: str) -> None:
    r = _post(client, body)
    assert r.status_code == status and message in r.json()["message"]


def test_malformed_json(client: TestClient) -> None:
    r = client.post(
        "/predict", content=b'{"records": [', headers={"content-type": "application/json", **KEY}
    )
    assert r.status_code == 422 and "JSON" in r.json()["message"]


def test_batch_over_max_batch(client: TestClient, records: list[dict[str, Any]]) -> None:
    r = _post(client, {"records": (records * 2)[:51]})
    assert r.status_code == 422 and "at most 50 items" in r.json()["message"]


def test_body_over_byte_limit(client: TestClient) -> None:
    r = client.post(
        "/predict", content=b" " * 200_001, headers={"content-type": "application/json", **KEY}
    )
    assert r.status_code == 413 and "200000 bytes" in r.json()["message"]

    def chunks() -> Any:  # no content-length: the limit holds while streaming too
        for _ in range(30):
            yield b" " * 10_000

    r = client.post(
        "/predict", content=chunks(), headers={"content-type": "application/json", **KEY}
    )
    assert r.status_code == 413


@pytest.mark.parametrize(
    ("headers", "message"), [({}, "missing API key"), ({"X-API-Key": "nope"}, "wrong API key")]
)
def test_api_key(
    client: TestClient, records: list[dict[str, Any]], headers: dict[str, str], message: str
) -> None:
    for r in (
        client.post("/predict", json={"records": records[:1]}, headers=headers),
        client.get("/metrics", headers=headers),
    ):
        assert r.status_code == 401 and message in r.json()["message"]


def test_health(client: TestClient, trained: TrainedModel) -> None:
    r = client.get("/health")
    assert r.status_code == 200
    assert r.json()["status"] == "ok" and r.json()["trial"] == trained.trial
    assert r.json()["features"] == list(trained.task.feature_names)


def _counter(text: str, name: str) -> float:
    pattern = re.escape(name) + r" ([0-9.e+]+)"
    match = re.search(pattern, text)
    return float(match.group(1)) if match else 0.0


def test_metrics_move(client: TestClient, records: list[dict[str, Any]]) -> None:
    ok = 'payoff_requests_total{path="/predict",status="200"}'
    bad = 'payoff_errors_total{path="/predict"}'
    rows = "payoff_predictions_total"
    before = client.get("/metrics", headers=KEY).text
    _post(client, {"records": records[:3]})
    _post(client, {"records": []})
    after = client.get("/metrics", headers=KEY)
    assert after.status_code == 200 and after.headers["content-type"].startswith("text/plain")
    assert _counter(after.text, ok) == _counter(before, ok) + 1
    assert _counter(after.text, bad) == _counter(before, bad) + 1
    assert _counter(after.text, rows) == _counter(before, rows) + 3
    assert "payoff_request_latency_seconds_bucket" in after.text


def test_openapi_names_the_features(client: TestClient, trained: TrainedModel) -> None:
    schema = client.get("/openapi.json").json()
    record = schema["components"]["schemas"]["Record"]
    # Every feature is named; none is required, as training imputes a missing one.
    assert set(record["properties"]) == set(trained.task.feature_names)
    assert "required" not in record and record["additionalProperties"] is False


def test_overflowing_values_get_422(client: TestClient, records: list[dict[str, Any]]) -> None:
    r = _post(client, {"records": [{**records[0], "alcohol": 1e308}]})
    assert r.status_code == 422 and "too large" in r.json()["message"]


def test_the_log_keeps_its_newest_rows_only(tmp_path: Path) -> None:
    log = PredictionLog(tmp_path / "log.db", max_rows=1000)
    for i in range(300):  # 300 requests of 10 records: 3,000 rows written
        log.append(0, [{"i": i * 10 + k} for k in range(10)], [0] * 10)
    log.close()
    records, _ = read_log(tmp_path / "log.db")
    # Pruned every 100 requests to the newest 1,000: at most 1,000 + 99 x 10 remain.
    assert 1000 <= len(records) <= 1990
    assert records[-1] == {"i": 2999}
    newest, _ = read_log(tmp_path / "log.db", limit=50)
    assert [r["i"] for r in newest] == list(range(2950, 3000))
