"""`payoff whatif`: each trial's time and cost on other hardware, labelled an estimate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import payoff
from payoff.cli import app
from tests.conftest import write_study

runner = CliRunner()


def test_whatif_prints_estimates_beside_the_measured_figures(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    payoff.run(write_study(tmp_path / "s.yaml"), storage=db)
    args = ["whatif", "tiny", "--on", "lambda-h100-sxm", "--on", "aws-m7i-4xlarge"]
    result = runner.invoke(app, [*args, "--storage", str(db)])
    assert result.exit_code == 0, result.output
    assert "lambda-h100-sxm" in result.output and "roofline" in result.output
    assert "caveat:" in result.output
    rows = json.loads(runner.invoke(app, [*args, "--storage", str(db), "--json"]).output)
    assert len(rows) == 2 * 4  # 4 trials x 2 targets
    for row in rows:
        assert row["method"] == "estimate:roofline"
        assert 0 < row["est_time_s"] < row["wall_s"]  # both targets are faster machines
    bigger = [r for r in rows if r["target"] == "aws-m7i-4xlarge"]
    # A CPU with 8x the cores at 8x the price: the same money, an eighth of the time.
    for row in bigger:
        assert row["est_cost_usd"] == pytest.approx(row["cost_usd_compute"], rel=0.05)


def test_unknown_hardware_exits_2_with_a_suggestion(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    payoff.run(write_study(tmp_path / "s.yaml", levers={"data": [1.0]}), storage=db)
    result = runner.invoke(app, ["whatif", "tiny", "--on", "h100", "--storage", str(db)])
    assert result.exit_code == 2
    assert "Did you mean 'aws-p5-h100'?" in result.output
