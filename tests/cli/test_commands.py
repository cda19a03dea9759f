"""The commands a user types: demo, trials (table, CSV, JSON), prices, --version."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

import payoff
from payoff.cli import app
from payoff.cli._app import demo_file

runner = CliRunner()

FIELDS = (
    "wall_s",
    "cpu_s",
    "flops",
    "peak_mem_bytes",
    "energy_kwh",
    "co2_kg",
    "energy_method",
    "cost_usd_compute",
    "cost_usd_energy",
    "cost_usd_labels",
    "cost_usd_total",
    "val_accuracy",
    "test_accuracy",
    "test_f1_macro",
    "test_precision_macro",
    "test_recall_macro",
    "latency_p50_s",
    "latency_p95_s",
    "throughput_per_s",
    "n_params",
    "size_bytes",
    "weights_artifact",
)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("demo") / "payoff.db"
    report = db.with_name("report.html")
    result = runner.invoke(app, ["demo", "--storage", str(db), "-o", str(report)])
    assert result.exit_code == 0, result.output
    assert "all planned trials done" in result.output
    # The demo ends with the report: written, offline, small enough to mail.
    assert f"report: {report}" in result.output.replace("\n", "")
    assert 0 < report.stat().st_size < 5e6
    return db


def test_the_demo_plans_a_grid_of_at_least_24_trials() -> None:
    config = payoff.load_config(demo_file())
    assert {"data", "model", "compute"} <= set(config.lever_values())
    assert payoff.study.plan_trials(config).__len__() >= 24


@pytest.mark.slow
def test_demo_reopens_with_every_trial_and_every_field(demo_db: Path) -> None:
    n_planned = len(payoff.study.plan_trials(payoff.load_config(demo_file())))
    result = runner.invoke(app, ["trials", "digits-demo", "--storage", str(demo_db), "--csv"])
    assert result.exit_code == 0
    frame = pd.read_csv(io.StringIO(result.output))
    assert len(frame) == n_planned and (frame["state"] == "COMPLETE").all()
    for field in FIELDS:
        assert frame[field].notna().all(), field
    records = json.loads(
        runner.invoke(app, ["trials", "digits-demo", "--storage", str(demo_db), "--json"]).output
    )
    assert len(records) == n_planned and set(FIELDS) <= set(records[0])


@pytest.mark.slow
def test_trials_table_shows_returns_and_costs(demo_db: Path) -> None:
    result = runner.invoke(
        app, ["trials", "digits-demo", "--storage", str(demo_db)], env={"COLUMNS": "250"}
    )
    assert result.exit_code == 0
    for header in (
        "test_accuracy",
        "p95_ms",
        "rows_per_s",
        "flops",
        "energy_kwh",
        "$labels",
        "$total",
        "peak_mem_MB",
    ):
        assert header in result.output, header
    assert "estimate:tdp" in result.output or "rapl" in result.output


@pytest.mark.slow
def test_demo_again_runs_nothing(demo_db: Path) -> None:
    report = demo_db.with_name("again.html")
    result = runner.invoke(app, ["demo", "--storage", str(demo_db), "-o", str(report)])
    assert result.exit_code == 0
    assert "0 to run" in result.output


def test_prices_prints_sources_and_the_detected_hardware() -> None:
    result = runner.invoke(app, ["prices"], env={"COLUMNS": "250"})
    assert result.exit_code == 0
    assert "hardware: auto ->" in result.output and "source" in result.output
    data = json.loads(runner.invoke(app, ["prices", "--json"]).output)
    assert all(row["source"] and row["as_of"] for row in data["prices"])
    assert data["hardware_auto"] and "CPU" in data["why"]


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and payoff.__version__ in result.output


@pytest.mark.parametrize(("name", "n_planned"), [("levers", 36), ("labels", 8)])
def test_the_shipped_levers_demos_are_valid_studies(name: str, n_planned: int) -> None:
    from payoff.config import load_config
    from payoff.study import plan_trials

    config = load_config(demo_file(name))
    assert len(plan_trials(config)) == n_planned
