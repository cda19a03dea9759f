"""A real uvicorn server on loopback, load-tested by `payoff loadtest`; fuzzed by schemathesis."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import payoff
from payoff.cli import app as cli
from payoff.serve import TrainedModel, create_app
from tests.serve.conftest import serving


@pytest.fixture(scope="module")
def server(
    served_study: payoff.Study, trained: TrainedModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    web = create_app(
        served_study, log_path=tmp_path_factory.mktemp("srv") / "log.db", model=trained
    )
    with serving(web) as url:
        yield url


@pytest.mark.slow
def test_loadtest_prices_and_stores(server: str, served_study: payoff.Study) -> None:
    storage = served_study.storage.removeprefix("sqlite:///")
    result = CliRunner().invoke(
        cli,
        [
            "loadtest",
            server,
            "--requests",
            "2000",
            "--concurrency",
            "8",
            "--study",
            served_study.optuna.study_name,
            "--storage",
            storage,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "errors: 0 (0.00%)" in result.output
    assert "p99" in result.output and "estimate" in result.output
    serving = payoff.load(served_study.optuna.study_name, storage).optuna.user_attrs["serving"]
    assert serving["measured"] is True and serving["source"] == "payoff loadtest"
    assert serving["usd_per_million"] > 0 and serving["throughput_per_s"] > 0
    assert serving["p99_s"] > 0
    assert "as the server@1 price; the ROI prices serving with it" in result.output
    # An offline run is kept beside it, never instead: big batches look cheaper.
    offline = CliRunner().invoke(
        cli,
        [
            *("loadtest", server, "--requests", "20", "--scenario", "offline", "--batch", "64"),
            *("--study", served_study.optuna.study_name, "--storage", storage),
        ],
    )
    assert offline.exit_code == 0, offline.output
    assert "the ROI prices serving by server@1" in " ".join(offline.output.split())
    attrs = payoff.load(served_study.optuna.study_name, storage).optuna.user_attrs
    assert attrs["serving"] == serving
    assert set(attrs["serving_prices"]) == {"server@1", "offline@64"}


def test_loadtest_without_study_and_offline(server: str) -> None:
    result = CliRunner().invoke(
        cli,
        [
            "loadtest",
            server,
            "--requests",
            "20",
            "--concurrency",
            "2",
            "--scenario",
            "offline",
            "--batch",
            "16",
            "--hardware",
            "auto",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "offline: 20 requests x 16 records" in result.output
    bad = CliRunner().invoke(cli, ["loadtest", server, "--scenario", "burst"])
    assert bad.exit_code == 2 and "unknown scenario" in bad.output


@pytest.mark.slow
def test_schemathesis_finds_no_server_errors(server: str) -> None:
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_url(f"{server}/openapi.json")
    failures: list[str] = []
    for op in schema.get_all_operations():
        operation = op.ok()

        @settings(
            max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        @given(case=operation.as_strategy())
        def check(case: schemathesis.Case) -> None:
            response = case.call(base_url=server, timeout=10)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.path}: {response.status_code}")

        check()
    assert failures == []


def test_serve_help_binds_loopback() -> None:
    result = CliRunner().invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0 and "127.0.0.1" in result.output


def test_export_cli(served_study: payoff.Study, tmp_path: Path) -> None:
    storage = served_study.storage.removeprefix("sqlite:///")
    out = tmp_path / "m.onnx"
    result = CliRunner().invoke(
        cli,
        [
            "export",
            served_study.optuna.study_name,
            "--trial",
            "best",
            "--format",
            "onnx",
            "-o",
            str(out),
            "--storage",
            storage,
        ],
    )
    assert result.exit_code == 0, result.output
    assert out.is_file() and "tolerance" in result.output


def test_loadtest_refuses_records_json_cannot_carry() -> None:
    from payoff.serve import run_loadtest

    with pytest.raises(payoff.ConfigError, match="cannot be sent as JSON"):
        run_loadtest("http://127.0.0.1:9", [{"alcohol": float("nan")}], n_requests=1)


def test_serve_on_a_busy_port_is_exit_2_before_announcing(
    server: str, served_study: payoff.Study
) -> None:
    port = server.rsplit(":", 1)[1]  # the running server holds it
    storage = served_study.storage.removeprefix("sqlite:///")
    result = CliRunner().invoke(cli, ["serve", "tiny", "--storage", storage, "--port", port])
    assert result.exit_code == 2, result.output
    assert f"cannot listen on 127.0.0.1:{port}" in result.output
    assert "serving study" not in result.output


def test_serve_on_a_port_out_of_range_is_exit_2() -> None:
    result = CliRunner().invoke(cli, ["serve", "tiny", "--port", "70000"])
    assert result.exit_code == 2
    assert "65535" in result.output


def test_loadtest_says_why_requests_failed(server: str) -> None:
    # Batches above the service's --max-batch (1,024) are all refused.
    args = ["loadtest", server, "--requests", "4", "--concurrency", "2", "--batch", "2000"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.split())
    assert re.search(r"no request succeeded \(4\d\d: 4\); first error: 4\d\d: \{", said), said
    unset = CliRunner().invoke(
        cli, ["loadtest", server, "--api-key-env", "PAYOFF_TEST_KEY_THAT_IS_UNSET"]
    )
    assert unset.exit_code == 2 and "that variable is unset" in unset.output
