"""The prediction service: a FastAPI app answering with ONNX Runtime, metered and logged."""

from __future__ import annotations

import logging
import math
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from fastapi import FastAPI, Header, Request, Security
from fastapi.exceptions import HTTPException, RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, ConfigDict, Field, StrictStr, create_model

from payoff._errors import ConfigError
from payoff.serve._encode import RecordEncoder
from payoff.serve._export import parse_quantize, served_model
from payoff.serve._log import MAX_ROWS, SYNTHETIC_HEADER, PredictionLog
from payoff.serve._model import (
    TrainedModel,
    categorical_columns,
    decision_of,
    default_log_path,
    load_trained,
)

if TYPE_CHECKING:
    from payoff.analysis._outcomes import Outcome
    from payoff.study import Study

_logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 8 * 1024 * 1024
API_KEY_HEADER = "X-API-Key"
_PATHS = ("/predict", "/health", "/metrics", "/openapi.json", "/docs")
_LATENCY_BUCKETS_S = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class _Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter(
            "payoff_requests",
            "HTTP requests answered.",
            ["path", "status"],
            registry=self.registry,
        )
        self.errors = Counter(
            "payoff_errors",
            "HTTP requests answered with a 4xx or 5xx status.",
            ["path"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "payoff_request_latency_seconds",
            "Time to answer a request.",
            ["path"],
            buckets=_LATENCY_BUCKETS_S,
            registry=self.registry,
        )
        self.predictions = Counter("payoff_predictions", "Rows predicted.", registry=self.registry)
        self.unknown = Counter(
            "payoff_unknown_categories",
            "Values of a categorical feature the model never saw in training.",
            ["feature"],
            registry=self.registry,
        )


class _Guard:
    """ASGI middleware: meters every request and refuses bodies over a byte limit (413)."""

    def __init__(self, app: ASGIApp, *, metrics: _Metrics, max_body_bytes: int) -> None:
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        path = scope.get("path", "")
        path = path if path in _PATHS else "other"
        status = {"code": 500}

        async def metered_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = int(message["status"])
            await send(message)

        try:
            replay = await self._read_body(scope, receive, metered_send)
            if replay is not None:
                await self.app(scope, replay, metered_send)
        finally:
            code = status["code"]
            self.metrics.requests.labels(path, str(code)).inc()
            if code >= 400:
                self.metrics.errors.labels(path).inc()
            self.metrics.latency.labels(path).observe(time.perf_counter() - start)

    async def _read_body(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        limit = self.max_body_bytes
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _too_large(send, limit)
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay


async def _too_large(send: Send, limit: int) -> None:
    response = JSONResponse(
        {"message": f"request body is over the limit of {limit} bytes; send smaller batches."},
        status_code=413,
    )
    await response({"type": "http"}, _no_receive, send)  # type: ignore[arg-type]


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


class PredictResponse(BaseModel):
    """Predictions, one a record, in the order sent."""

    trial: int
    predictions: list[str] | list[float] = Field(
        description="Class labels (classification) or values (regression), one a record."
    )
    probabilities: list[dict[str, float]] | None = Field(
        default=None, description="Per-class probabilities (classification only)."
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="One line a concern: a category the model never saw in training "
        "(predicted as the encoder treats it: no category of that feature), or a record "
        "with every feature missing (predicted from imputed values).",
    )


class Health(BaseModel):
    """The service is up, and serves this model."""

    status: str
    study: str
    trial: int
    kind: str
    features: list[str]
    classes: list[str]
    quantize: str = Field(description="none (fp32) or int8: the served model's weights.")
    decision: str = Field(description="How class probabilities become predicted labels.")
    model_bytes: int = Field(description="Size of the served ONNX model.")


def _error_text(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep location, message and type: inputs may hold NaN, which JSON cannot carry."""
    return [
        {
            "loc": [str(p) for p in e.get("loc", ())],
            "msg": str(e.get("msg")),
            "type": e.get("type"),
        }
        for e in errors
    ]


def _record_model(model: TrainedModel) -> type[BaseModel]:
    categorical = categorical_columns(model.task)
    fields: dict[str, Any] = {}
    # A feature omitted or sent as null is imputed, as training imputed it.
    for i, name in enumerate(model.task.feature_names):
        if name in categorical:
            annotation: Any = StrictStr | None
            field = Field(default=None, alias=name, max_length=1000)
        else:
            annotation = float | None
            field = Field(default=None, alias=name, strict=True, allow_inf_nan=False)
        fields[f"f{i}"] = (annotation, field)
    return create_model(  # type: ignore[call-overload,no-any-return]
        "Record",
        __config__=ConfigDict(extra="forbid", populate_by_name=False),
        **fields,
    )


def _decision_words(rule: Outcome | None, classes: list[str]) -> str:
    if rule is None:
        return "the most probable class"
    if rule.threshold is not None and len(classes) == 2:
        if math.isinf(rule.threshold):
            return f"always {classes[0]!r}: {rule.rule}"
        return f"{classes[1]!r} when P({classes[1]!r}) >= {rule.threshold:.4g}: {rule.rule}"
    return rule.rule


def create_app(
    study: Study,
    trial: str | int = "best",
    *,
    api_key: str | None = None,
    log_path: str | Path | None = None,
    max_batch: int = 1024,
    max_body_bytes: int = MAX_BODY_BYTES,
    model: TrainedModel | None = None,
    quantize: str | None = None,
    n_threads: int = 1,
    log_max_rows: int = MAX_ROWS,
    strict_categories: bool = False,
) -> FastAPI:
    """Return the prediction service for a trial's model, answered by ONNX Runtime.

    The model is exported to ONNX in memory (and quantised, with ``quantize``) and
    checked against the trained PyTorch model on the test set before the app is returned.
    Records are encoded with NumPy from the fitted preprocessor (see `RecordEncoder`),
    exactly as the preprocessor encodes them.

    Endpoints: ``POST /predict`` (``{"records": [{feature: value, ...}, ...]}``),
    ``GET /health``, ``GET /metrics`` (Prometheus text) and FastAPI's ``/openapi.json``.

    Args:
        study: The study.
        trial: ``"best"`` or a trial number.
        api_key: When set, ``/predict`` and ``/metrics`` need it in the ``X-API-Key``
            header (401 otherwise); ``/health`` stays open for probes.
        log_path: SQLite file logging inputs and predictions [default: beside the
            study's storage, ``STUDY-predictions.db``].
        log_max_rows: The most rows the log keeps (the oldest go first).
        max_batch: The most records one request may carry (422 above it).
        max_body_bytes: The largest request body accepted (413 above it).
        model: An already loaded model of that study (saves loading it again).
        quantize: ``"int8"``: serve the model with int8 Linear weights (ONNX Runtime
            dynamic quantisation), checked within ``INT8_TOLERANCE``; [default: fp32].
        n_threads: ONNX Runtime threads a request (0: one a core). One by default:
            requests already run in parallel on the server's thread pool, and a small
            model loses more to handing a request between threads than it gains.
        strict_categories: answer 422 to a category the model never saw, instead of
            predicting it (as the encoder treats it) with a line in ``warnings``.

    Raises:
        ConfigError: no such trial, unknown ``quantize``, or the ONNX model does not match
            the trained one.
    """
    if max_batch < 1 or max_body_bytes < 1:
        raise ConfigError("max_batch and max_body_bytes must be at least 1.")
    quantize = None if quantize is None else parse_quantize(quantize).value
    model = model or load_trained(study, trial)
    task = model.task
    onnx_model, session, check = served_model(model, quantize, n_threads=n_threads)
    log = PredictionLog(
        log_path if log_path is not None else default_log_path(study), max_rows=log_max_rows
    )
    metrics = _Metrics()
    classify = task.kind == "classification"
    classes = list(task.classes)
    features = list(task.feature_names)
    Record = _record_model(model)
    encoder = RecordEncoder(task)
    known = task.known_categories()
    rule = decision_of(study.record(), model.trial) if classify else None

    def unseen_categories(records: list[dict[str, Any]]) -> list[str]:
        lines = []
        for i, record in enumerate(records):
            for name, seen in known.items():
                value = record.get(name)
                if value is not None and value not in seen:
                    metrics.unknown.labels(name).inc()
                    lines.append(
                        f"record {i}: {name}={value!r} is a category never seen in training"
                    )
        return lines

    PredictRequest = create_model(  # type: ignore[call-overload]
        "PredictRequest",
        __config__=ConfigDict(extra="forbid"),
        records=(list[Record], Field(min_length=1, max_length=max_batch)),  # type: ignore[valid-type]
    )

    header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False)

    # async: a string comparison needs no worker thread (a sync dependency gets one).
    async def authorize(key: str | None = Security(header)) -> None:  # noqa: B008
        if api_key is None:
            return
        if key is None:
            raise HTTPException(401, f"missing API key: send it in the {API_KEY_HEADER} header.")
        if not secrets.compare_digest(key.encode(), api_key.encode()):
            raise HTTPException(401, "wrong API key.")

    app = FastAPI(
        title=f"payoff: {study.optuna.study_name} trial {model.trial}",
        description=f"Predictions of trial {model.trial} of study {study.optuna.study_name!r} "
        f"({task.name}, {task.kind}), answered by ONNX Runtime.",
        version="1",
    )
    app.state.model = model
    app.state.quantize = quantize or "none"
    app.state.model_bytes = len(onnx_model)
    app.state.check = check
    app.state.encoder = encoder
    app.state.log = log
    app.state.metrics = metrics

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = _error_text(list(exc.errors()))
        lines = [f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors[:10]]
        more = f" (and {len(errors) - 10} more)" if len(errors) > 10 else ""
        return JSONResponse(
            {"message": "; ".join(lines) + more, "detail": errors}, status_code=422
        )

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse(
            {"message": str(exc.detail), "detail": str(exc.detail)},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        _logger.exception("prediction failed")
        return JSONResponse({"message": f"internal error: {type(exc).__name__}"}, status_code=500)

    def predict(
        body: Any, synthetic: str | None = Header(default=None, alias=SYNTHETIC_HEADER)
    ) -> PredictResponse:
        """Predict each record: named raw features, as in the training data."""
        records = [r.model_dump(by_alias=True) for r in body.records]
        unseen = unseen_categories(records)
        if strict_categories and unseen:
            raise HTTPException(422, "; ".join(unseen[:10]) + " (serve --strict-categories).")
        warnings = [
            f"record {i}: every feature is missing; predicted from imputed values"
            for i, record in enumerate(records)
            if all(v is None for v in record.values())
        ] + unseen
        X = encoder.encode(records)  # huge inputs overflow to inf; refused just below
        if not np.all(np.isfinite(X)):
            bad = sorted(
                {features[j] for j in np.nonzero(~np.isfinite(X))[1] if j < len(features)}
            )
            raise HTTPException(
                422,
                "values too large to encode (overflow after standardising)"
                + (f": {', '.join(bad[:10])}" if bad else "")
                + ".",
            )
        out = session.run(None, {"x": X})[0]
        if not np.all(np.isfinite(out)):
            raise HTTPException(422, "the model's output is not finite for these records.")
        if classify:
            calls = rule.decide(out) if rule is not None else out.argmax(axis=1)
            labels = [classes[i] for i in calls]
            probs = [dict(zip(classes, map(float, row), strict=True)) for row in out]
            response = PredictResponse(
                trial=model.trial, predictions=labels, probabilities=probs, warnings=warnings
            )
            logged: list[Any] = labels
            sure: list[float] | None = [float(v) for v in out.max(axis=1)]
        else:
            values = [float(v) for v in out[:, 0]]
            response = PredictResponse(trial=model.trial, predictions=values, warnings=warnings)
            logged, sure = values, None
        log.append(model.trial, records, logged, synthetic=synthetic is not None, confidence=sure)
        metrics.predictions.inc(len(records))
        return response

    # FastAPI reads the body's type from the annotation; this one is built at run time.
    predict.__annotations__["body"] = PredictRequest
    app.add_api_route(
        "/predict",
        predict,
        methods=["POST"],
        response_model=PredictResponse,
        dependencies=[Security(authorize)],
        responses={
            401: {"description": "Missing or wrong API key"},
            413: {"description": "Body too large"},
            422: {"description": "Invalid records"},
        },
    )

    @app.get("/health", response_model=Health)
    def health() -> Health:
        """Say the service is up, and which model it serves."""
        return Health(
            status="ok",
            study=study.optuna.study_name,
            trial=model.trial,
            kind=task.kind,
            features=features,
            classes=classes,
            quantize=app.state.quantize,
            decision=_decision_words(rule, classes) if classify else "the model's value",
            model_bytes=app.state.model_bytes,
        )

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        dependencies=[Security(authorize)],
        responses={401: {"description": "Missing or wrong API key"}},
    )
    def metrics_text() -> PlainTextResponse:
        """Prometheus metrics: requests, errors, latency histogram, rows predicted."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return PlainTextResponse(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(_Guard, metrics=metrics, max_body_bytes=max_body_bytes)
    return app
