"""Load-test a prediction service and price a million predictions from what it measures."""

from __future__ import annotations

import asyncio
import itertools
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import numpy as np

from payoff._errors import ConfigError
from payoff.serve._log import SYNTHETIC_HEADER

if TYPE_CHECKING:
    from payoff.study import Study


class Scenario(StrEnum):
    """MLPerf-style load shapes.

    SINGLE_STREAM: one request of one record at a time (latency-bound).
    SERVER: ``concurrency`` clients, each sending its next request when answered.
    OFFLINE: big batches (default 256 records) at ``concurrency``: throughput-bound.
    """

    SINGLE_STREAM = "single-stream"
    SERVER = "server"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class LoadtestResult:
    """What a load test measured.

    Attributes:
        url: The service's base URL.
        scenario: The load shape.
        n_requests: Requests sent.
        n_errors: Requests that failed (a non-200 status or no answer).
        concurrency: Clients in flight at once.
        batch: Records a request.
        duration_s: Wall time of the test.
        throughput_per_s: Predictions (records) answered per second, errors excluded.
        requests_per_s: Requests answered per second.
        latency_p50_s: Median request latency.
        latency_p95_s: 95th percentile latency.
        latency_p99_s: 99th percentile latency.
        stopped_early: The time limit ended the test before every request was sent.
        statuses: Requests by HTTP status (``"no answer"`` for none).
        first_error: The first failed request's status and body (cut short), or "".
    """

    url: str
    scenario: str
    n_requests: int
    n_errors: int
    concurrency: int
    batch: int
    duration_s: float
    throughput_per_s: float
    requests_per_s: float
    latency_p50_s: float
    latency_p95_s: float
    latency_p99_s: float
    stopped_early: bool
    statuses: dict[str, int] = field(default_factory=dict)
    first_error: str = ""

    @property
    def error_rate(self) -> float:
        """Return the fraction of requests that failed."""
        return self.n_errors / self.n_requests if self.n_requests else 0.0


@dataclass(frozen=True, slots=True)
class ServingPrice:
    """The price of a million predictions at the measured throughput.

    Attributes:
        usd_per_million: Hardware plus estimated energy, USD a million predictions.
        hardware: The price-book entry priced.
        usd_per_hour: Its hourly price.
        hardware_usd_per_million: The hardware's share.
        energy_kwh_per_million: Energy estimated from the hardware's TDP and PUE (an
            estimate: the machine is assumed to draw its TDP while serving).
        energy_usd_per_million: That energy at the price book's electricity price.
    """

    usd_per_million: float
    hardware: str
    usd_per_hour: float
    hardware_usd_per_million: float
    energy_kwh_per_million: float
    energy_usd_per_million: float


def example_records(study: Study, n: int = 256) -> list[dict[str, Any]]:
    """Return up to ``n`` raw test-set records of a study's task, as a client sends them."""
    from payoff.serve._model import raw_frame
    from payoff.study._builtin import task_of

    task = task_of(study.config)
    if task.raw_test is not None and len(task.raw_test):
        # Real held-out rows as they were read; a missing value goes as null.
        frame = task.raw_test.head(n)
        return [
            {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in r.items()}
            for r in frame.to_dict("records")
        ]
    X = task.X_test if len(task.X_test) else task.X_train
    records: list[dict[str, Any]] = raw_frame(task, X[:n]).to_dict("records")
    return records


def records_from_schema(openapi: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Return one placeholder record (numbers 0.0, strings "") from a service's schema."""
    try:
        props = openapi["components"]["schemas"]["Record"]["properties"]
    except KeyError:
        raise ConfigError(
            "the service's OpenAPI schema has no Record; is it payoff serve?"
        ) from None
    return [{k: ("" if v.get("type") == "string" else 0.0) for k, v in props.items()}]


def run_loadtest(
    url: str,
    records: Sequence[Mapping[str, Any]] | None = None,
    *,
    n_requests: int = 1000,
    concurrency: int = 8,
    batch: int | None = None,
    scenario: str = "server",
    api_key: str | None = None,
    time_limit_s: float = 60.0,
    timeout_s: float = 30.0,
) -> LoadtestResult:
    """Send ``n_requests`` prediction requests to ``URL/predict`` and measure them.

    Bounded in count (``n_requests``) and time (``time_limit_s``: no request starts
    after it). Records are cycled through; without any, a placeholder record is made
    from the service's OpenAPI schema.

    Raises:
        ConfigError: a bad argument, or the service cannot be reached.
    """
    import httpx

    try:
        shape = Scenario(scenario)
    except ValueError:
        raise ConfigError(
            f"unknown scenario {scenario!r}; use one of: {', '.join(s.value for s in Scenario)}."
        ) from None
    if shape is Scenario.SINGLE_STREAM:
        concurrency, batch = 1, 1 if batch is None else batch
    batch = batch if batch is not None else (256 if shape is Scenario.OFFLINE else 1)
    for name, value in (("requests", n_requests), ("concurrency", concurrency), ("batch", batch)):
        if value < 1:
            raise ConfigError(f"--{name} must be at least 1, got {value}.")
    base = url.rstrip("/")
    headers = {"X-API-Key": api_key} if api_key else {}
    if not records:
        try:
            schema = httpx.get(f"{base}/openapi.json", timeout=timeout_s, headers=headers)
            schema.raise_for_status()
        except httpx.HTTPError as err:
            raise ConfigError(f"cannot reach the service at {base}: {err}") from err
        records = records_from_schema(schema.json())
    pool = itertools.cycle(list(records))
    # Encoded once, as httpx's json= would encode them on every request: the client's own
    # CPU time is then spent sending, not serialising, and a 2-core machine measures the
    # service rather than its load generator.
    try:
        payloads = [
            json.dumps(
                {"records": [next(pool) for _ in range(batch)]},
                ensure_ascii=False,
                separators=(",", ":"),
                allow_nan=False,
            ).encode()
            for _ in range(min(n_requests, 64))
        ]
    except (TypeError, ValueError) as err:
        raise ConfigError(f"the records cannot be sent as JSON: {err}.") from None
    return asyncio.run(
        _drive(
            base,
            payloads,
            headers,
            shape.value,
            n_requests,
            concurrency,
            batch,
            time_limit_s,
            timeout_s,
        )
    )


async def _drive(
    base: str,
    payloads: list[bytes],
    headers: dict[str, str],
    scenario: str,
    n_requests: int,
    concurrency: int,
    batch: int,
    time_limit_s: float,
    timeout_s: float,
) -> LoadtestResult:
    import httpx

    latencies: list[float] = []
    statuses: dict[str, int] = {}
    n_errors = 0
    n_sent = 0
    first_error = ""
    start = time.perf_counter()
    deadline = start + time_limit_s
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    # Tagged, so the service logs this traffic as synthetic and drift leaves it out.
    headers = {**headers, "Content-Type": "application/json", SYNTHETIC_HEADER: "loadtest"}
    async with httpx.AsyncClient(
        base_url=base, headers=headers, timeout=timeout_s, limits=limits
    ) as client:

        async def worker() -> None:
            nonlocal n_errors, n_sent, first_error
            while n_sent < n_requests and time.perf_counter() < deadline:
                payload = payloads[n_sent % len(payloads)]
                n_sent += 1
                t0 = time.perf_counter()
                try:
                    response = await client.post("/predict", content=payload)
                    status, ok = str(response.status_code), response.status_code == 200
                    body = "" if ok else response.text
                except httpx.HTTPError as err:
                    status, ok, body = "no answer", False, f"{type(err).__name__}: {err}"
                latencies.append(time.perf_counter() - t0)
                statuses[status] = statuses.get(status, 0) + 1
                if not ok:
                    n_errors += 1
                    first_error = first_error or f"{status}: {body[:300]}"

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    duration = time.perf_counter() - start
    lat = np.asarray(latencies) if latencies else np.zeros(1)
    n_ok = n_sent - n_errors
    return LoadtestResult(
        url=base,
        scenario=scenario,
        n_requests=n_sent,
        n_errors=n_errors,
        concurrency=concurrency,
        batch=batch,
        duration_s=duration,
        throughput_per_s=n_ok * batch / duration if duration > 0 else 0.0,
        requests_per_s=n_sent / duration if duration > 0 else 0.0,
        latency_p50_s=float(np.percentile(lat, 50)),
        latency_p95_s=float(np.percentile(lat, 95)),
        latency_p99_s=float(np.percentile(lat, 99)),
        stopped_early=n_sent < n_requests,
        statuses=statuses,
        first_error=first_error,
    )


def price_serving(
    result: LoadtestResult,
    *,
    hardware: str = "auto",
    prices: Mapping[str, Any] | None = None,
) -> ServingPrice:
    """Price a million predictions: the hardware's $/hour over the measured throughput,
    plus energy estimated from its TDP and the data centre's PUE.

    Raises:
        ConfigError: nothing was answered, so there is no throughput to price.
        PriceNotFoundError: no such hardware in the price book.
    """
    from payoff.prices import load_price_book, resolve_hardware

    if result.throughput_per_s <= 0:
        raise ConfigError("the load test answered no prediction; there is no throughput to price.")
    book = load_price_book(prices)
    entry = resolve_hardware(book, hardware).entry
    hours = 1e6 / result.throughput_per_s / 3600
    usd_per_hour = float(entry.usd_per_hour.value)
    kwh = entry.tdp_w / 1000 * hours * float(book.pue.value)
    energy_usd = kwh * float(book.electricity_usd_per_kwh.value)
    hardware_usd = usd_per_hour * hours
    return ServingPrice(
        usd_per_million=hardware_usd + energy_usd,
        hardware=entry.name,
        usd_per_hour=usd_per_hour,
        hardware_usd_per_million=hardware_usd,
        energy_kwh_per_million=kwh,
        energy_usd_per_million=energy_usd,
    )


def store_serving_price(
    study: Study, result: LoadtestResult, price: ServingPrice
) -> tuple[dict[str, Any], str]:
    """Store the measured price on the study under its scenario and batch size (user attr
    ``serving_prices``); return it and the key the ROI prices serving by.

    The ROI uses the price of ``value.serving_scenario`` at ``value.serving_batch`` (the
    ``server`` scenario at one record a request by default): that one is also stored as
    user attr ``serving``. Another scenario's price is kept beside it, never instead.
    """
    attr = {
        "usd_per_million": price.usd_per_million,
        "measured": True,
        "throughput_per_s": result.throughput_per_s,
        "p99_s": result.latency_p99_s,
        "p50_s": result.latency_p50_s,
        "error_rate": result.error_rate,
        "hardware": price.hardware,
        "energy_kwh_per_million_estimate": price.energy_kwh_per_million,
        "scenario": result.scenario,
        "batch": result.batch,
        "concurrency": result.concurrency,
        "source": "payoff loadtest",
    }
    key = f"{result.scenario}@{result.batch}"
    prices = {**study.optuna.user_attrs.get("serving_prices", {}), key: attr}
    study.optuna.set_user_attr("serving_prices", prices)
    value = study.config.value
    used = f"{value.serving_scenario}@{value.serving_batch}"
    if key == used:
        study.optuna.set_user_attr("serving", attr)
    return attr, used
