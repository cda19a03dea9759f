"""`payoff serve` and `payoff loadtest`: a trial's model over HTTP, and what serving it costs."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

import payoff
from payoff.cli._app import StorageOpt, _user_errors, app, console

if TYPE_CHECKING:
    from payoff.serve import DriftReport


@app.command()
def serve(
    study: Annotated[str, typer.Argument(help="The study's name.")],
    trial: Annotated[
        str,
        typer.Option(
            "--trial",
            help="best (best validation score of all trials), recommended (the setting "
            "payoff recommend names, its best seed), or a trial number.",
        ),
    ] = "best",
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, help="Port to listen on.")
    ] = 8000,
    api_key_env: Annotated[
        str | None,
        typer.Option("--api-key-env", help="Environment variable holding the API key."),
    ] = None,
    max_batch: Annotated[int, typer.Option("--max-batch", help="Most records a request.")] = 1024,
    quantize: Annotated[
        str | None,
        typer.Option("--quantize", help="int8: int8 Linear weights (ONNX Runtime dynamic)."),
    ] = None,
    log_max_rows: Annotated[
        int, typer.Option("--log-max-rows", min=1000, help="Rows the prediction log keeps.")
    ] = 1_000_000,
    strict_categories: Annotated[
        bool,
        typer.Option(
            "--strict-categories",
            help="Answer 422 to a category never seen in training (default: predict it and "
            "say so in the response's warnings).",
        ),
    ] = False,
    storage: StorageOpt = None,
) -> None:
    """Serve a trial's model (ONNX Runtime): POST /predict, GET /health, GET /metrics."""
    import uvicorn

    from payoff.serve._app import create_app

    with _user_errors():
        api_key = _api_key(api_key_env)
        _check_port(host, port)  # before anything is announced
        s = payoff.load(study, storage)
        web = create_app(
            s,
            trial,
            api_key=api_key,
            max_batch=max_batch,
            quantize=quantize,
            log_max_rows=log_max_rows,
            strict_categories=strict_categories,
        )
        model = web.state.model
        check, int8 = web.state.check, ""
        if web.state.quantize == "int8":
            int8 = f", int8: within {check.max_abs_diff:.2g} of PyTorch"
            if check.agreement is not None:
                int8 += f", {check.agreement:.2%} of test classes agree"
        console.print(
            f"serving study {study!r} trial {model.trial} on http://{host}:{port} "
            f"(log: {web.state.log.path}{int8})",
            highlight=False,
        )
    uvicorn.run(web, host=host, port=port, log_level="warning")


def _api_key(env: str | None) -> str | None:
    """The key in environment variable ``env``; an unset one is a user's mistake."""
    if env is None:
        return None
    key = os.environ.get(env)
    if not key:
        raise payoff.ConfigError(f"--api-key-env {env}: that variable is unset.")
    return key


def _check_port(host: str, port: int) -> None:
    """Refuse a port this process cannot listen on (taken, or privileged)."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as err:
            raise payoff.ConfigError(
                f"cannot listen on {host}:{port}: {err.strerror or err}. Choose another "
                "--port (or stop what holds it)."
            ) from None


@app.command()
def loadtest(
    url: Annotated[str, typer.Argument(help="The service's base URL, e.g. http://127.0.0.1:8000")],
    requests: Annotated[int, typer.Option("--requests", help="Requests to send.")] = 1000,
    concurrency: Annotated[int, typer.Option("--concurrency", help="Clients at once.")] = 8,
    batch: Annotated[
        int | None, typer.Option("--batch", help="Records a request [default: per scenario].")
    ] = None,
    scenario: Annotated[
        str, typer.Option("--scenario", help="single-stream, server or offline.")
    ] = "server",
    time_limit_s: Annotated[
        float, typer.Option("--time-limit-s", help="No request starts after this.")
    ] = 60.0,
    study: Annotated[
        str | None,
        typer.Option("--study", help="Send its test records, and store the price on it."),
    ] = None,
    hardware: Annotated[
        str | None,
        typer.Option("--hardware", help="Price-book entry [default: the study's, or auto]."),
    ] = None,
    api_key_env: Annotated[
        str | None, typer.Option("--api-key-env", help="Environment variable with the key.")
    ] = None,
    storage: StorageOpt = None,
) -> None:
    """Load-test a service; report throughput, latency, errors and the price of 1M predictions."""
    from payoff.serve import example_records, price_serving, run_loadtest, store_serving_price

    with _user_errors():
        api_key = _api_key(api_key_env)
        s = payoff.load(study, storage) if study else None
        result = run_loadtest(
            url,
            example_records(s) if s else None,
            n_requests=requests,
            concurrency=concurrency,
            batch=batch,
            scenario=scenario,
            api_key=api_key,
            time_limit_s=time_limit_s,
        )
        console.print(
            f"{result.scenario}: {result.n_requests} requests x {result.batch} records at "
            f"concurrency {result.concurrency} in {result.duration_s:.2f} s"
            + (" (stopped by the time limit)" if result.stopped_early else ""),
            highlight=False,
        )
        console.print(
            f"throughput: {result.throughput_per_s:,.1f} predictions/s "
            f"({result.requests_per_s:,.1f} requests/s)",
            highlight=False,
        )
        console.print(
            f"latency: p50 {result.latency_p50_s * 1e3:.2f} ms, p95 "
            f"{result.latency_p95_s * 1e3:.2f} ms, p99 {result.latency_p99_s * 1e3:.2f} ms",
            highlight=False,
        )
        by_status = ", ".join(f"{k}: {v}" for k, v in sorted(result.statuses.items()))
        console.print(
            f"errors: {result.n_errors} ({result.error_rate:.2%}); by status: {by_status}"
            + (f"; first error: {result.first_error}" if result.first_error else ""),
            highlight=False,
        )
        if result.throughput_per_s <= 0:
            raise payoff.ConfigError(
                f"no request succeeded ({by_status}); first error: {result.first_error}. "
                "Nothing to price."
            )
        config = s.config if s else None
        price = price_serving(
            result,
            hardware=hardware or (config.hardware if config else "auto"),
            prices=config.prices if config else None,
        )
        console.print(
            f"price of 1M predictions: ${price.usd_per_million:.4f} = hardware "
            f"${price.hardware_usd_per_million:.4f} ({price.hardware}, "
            f"${price.usd_per_hour:.4f}/h) + energy ${price.energy_usd_per_million:.4f} "
            f"(estimate from TDP: {price.energy_kwh_per_million:.4f} kWh)",
            highlight=False,
        )
        if s is not None:
            _, used = store_serving_price(s, result, price)
            key = f"{result.scenario}@{result.batch}"
            uses = (
                "the ROI prices serving with it"
                if key == used
                else f"the ROI prices serving by {used} (value.serving_scenario and "
                "serving_batch), "
                + (
                    "measured before"
                    if used in s.optuna.user_attrs.get("serving_prices", {})
                    else f"not measured yet: it keeps its estimate until a loadtest "
                    f"--scenario {used.split('@')[0]} --batch {used.split('@')[1]}"
                )
            )
            console.print(f"stored on study {study!r} as the {key} price; {uses}", highlight=False)


@app.command()
def monitor(
    study: Annotated[str, typer.Argument(help="The study's name.")],
    log: Annotated[
        str | None, typer.Option("--log", help="The service's prediction log (SQLite).")
    ] = None,
    trial: Annotated[
        int | None, typer.Option("--trial", help="Only this trial's traffic.")
    ] = None,
    psi_threshold: Annotated[float, typer.Option("--psi-threshold")] = 0.2,
    window: Annotated[
        int, typer.Option("--window", min=50, help="The newest logged records to compare.")
    ] = 10_000,
    storage: StorageOpt = None,
    include_loadtest: Annotated[
        bool,
        typer.Option("--include-loadtest", help="Count payoff loadtest's traffic too."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    fail_on_drift: Annotated[
        bool,
        typer.Option("--fail-on-drift", help="Exit 1 when retraining looks warranted."),
    ] = False,
) -> None:
    """Drift of each input and of the predictions (PSI; KS or chi-square) against the
    training data."""
    import dataclasses
    import json

    from payoff.serve._monitor import monitor as drift

    with _user_errors():
        report = drift(
            payoff.load(study, storage),
            log_path=log,
            trial=trial,
            psi_threshold=psi_threshold,
            window=window,
            synthetic=include_loadtest,
        )
    if as_json:
        print(json.dumps(dataclasses.asdict(report), indent=1))
    else:
        _drift_table(report)
    if fail_on_drift and report.retrain:
        raise typer.Exit(code=1)


def _drift_table(report: DriftReport) -> None:
    from rich.table import Table

    table = Table(
        title=f"drift of {report.n_served} served records against "
        f"{report.n_reference} training rows",
        title_justify="left",
    )
    for col in ("input", "PSI", "test", "statistic", "p", "new categories", "drifted"):
        table.add_column(col, justify="right")
    rows = (*report.features, report.prediction, *filter(None, [report.confidence]))
    for f in sorted(rows, key=lambda f: -f.psi):
        table.add_row(
            f.name,
            f"{f.psi:.3f}",
            f.test,
            f"{f.statistic:.3g}",
            f"{f.p:.2g}",
            f"{f.new_share:.1%}" if f.new_share else "",
            "yes" if f.drifted else "",
        )
    console.print(table)
    console.print(report.message, highlight=False)
