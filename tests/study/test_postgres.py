"""Many workers, one study, on a real PostgreSQL server started by the test."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

import optuna
import pytest

from tests.conftest import write_study
from tests.postgres import postgres_server


@pytest.mark.slow
def test_four_workers_on_postgresql_run_every_trial_exactly_once(tmp_path: Path) -> None:
    study = write_study(
        tmp_path / "s.yaml",
        levers={"data": [0.25, 0.5, 0.75, 1.0], "compute": [1, 2, 3]},
        seeds=2,
    )
    with postgres_server() as url:
        done = subprocess.run(
            [sys.executable, "-m", "payoff", "run", str(study), "--storage", url, "--jobs", "4"],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        trials = optuna.load_study(study_name="tiny", storage=url).trials
        complete = Counter(t.user_attrs["plan_key"] for t in trials if t.state.name == "COMPLETE")
        assert len(complete) == 24 and set(complete.values()) == {1}
        assert len({t.user_attrs["owner"]["pid"] for t in trials if "owner" in t.user_attrs}) > 1
        listed = subprocess.run(
            [sys.executable, "-m", "payoff", "trials", "tiny", "--storage", url, "--csv"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert listed.returncode == 0 and len(listed.stdout.strip().splitlines()) == 25


@pytest.mark.slow
def test_a_worker_killed_midway_then_a_rerun_runs_every_trial_once(tmp_path: Path) -> None:
    import os
    import signal
    import time

    import psutil

    study = write_study(
        tmp_path / "s.yaml",
        levers={"data": [0.25, 0.5, 0.75, 1.0], "compute": [4, 6, 8]},
        train={"model": "small", "batch_size": 8, "patience": None},
        seeds=2,
    )
    args = [sys.executable, "-m", "payoff", "run", str(study), "--jobs", "2"]
    with postgres_server() as url:
        proc = subprocess.Popen(
            [*args, "--storage", url],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def complete() -> list[str]:
            try:
                trials = optuna.load_study(study_name="tiny", storage=url).trials
            except KeyError:  # the study is not created yet
                return []
            return [t.user_attrs["plan_key"] for t in trials if t.state.name == "COMPLETE"]

        deadline = time.monotonic() + 300
        while len(complete()) < 3:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.5)
        workers = [
            c.pid
            for c in psutil.Process(proc.pid).children()
            if "resource_tracker" not in " ".join(c.cmdline())  # forked workers
        ]
        os.kill(workers[0], signal.SIGKILL)
        proc.wait(timeout=300)
        done = subprocess.run(
            [*args, "--storage", url], capture_output=True, text=True, timeout=600, cwd=tmp_path
        )
        assert done.returncode == 0, done.stdout + done.stderr
        counts = Counter(complete())
        assert len(counts) == 24 and set(counts.values()) == {1}
