"""optuna-dashboard, started on loopback by the test, reads a payoff study's measurements."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import payoff
from tests.conftest import free_port, write_study


def _get(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return dict(json.load(response))


@pytest.mark.slow
def test_optuna_dashboard_shows_every_measurement(tmp_path: Path) -> None:
    study = payoff.run(write_study(tmp_path / "s.yaml"), storage=tmp_path / "p.db")
    port = free_port()
    dashboard = [
        str(Path(sys.executable).with_name("optuna-dashboard")),
        f"sqlite:///{tmp_path / 'p.db'}",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    server = subprocess.Popen(dashboard, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                summaries = _get(f"http://127.0.0.1:{port}/api/studies")["study_summaries"]
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline
                time.sleep(0.5)
        (summary,) = summaries  # type: ignore[misc]
        assert summary["study_name"] == "tiny"
        detail = _get(f"http://127.0.0.1:{port}/api/studies/{summary['study_id']}?after=0")
        trials = detail["trials"]
        assert len(trials) == len(study.trials())  # type: ignore[arg-type]
        for trial in trials:  # type: ignore[union-attr]
            attrs = {a["key"] for a in trial["user_attrs"]}
            assert {"wall_s", "energy_kwh", "cost_usd_total", "test_accuracy", "flops"} <= attrs
            assert len(trial["intermediate_values"]) >= 1
    finally:
        server.terminate()
        server.wait(timeout=30)
