"""Kill a real `payoff run` midway (SIGKILL, Ctrl-C), run it again: nothing lost or run twice."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import write_study

PAYOFF = [sys.executable, "-m", "payoff"]
N_PLANNED = 8


def _study24(tmp_path: Path) -> Path:
    """The 24-trial study the many-workers checks run: small, quick trials."""
    return write_study(
        tmp_path / "s.yaml",
        levers={"data": [0.25, 0.5, 0.75, 1.0], "compute": [4, 6, 8]},
        train={"model": "small", "batch_size": 8, "patience": None},
        seeds=2,
    )


def _study(tmp_path: Path) -> Path:
    return write_study(
        tmp_path / "s.yaml",
        levers={"data": [0.25, 0.5, 0.75, 1.0], "compute": [6, 8]},
        train={"model": "medium", "batch_size": 8, "patience": None},
    )


def _completed(db: Path) -> list[str]:
    if not db.exists():
        return []
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as con:
        try:
            rows = con.execute(
                "SELECT a.value_json FROM trials t JOIN trial_user_attributes a "
                "ON a.trial_id = t.trial_id WHERE t.state = 'COMPLETE' AND a.key = 'plan_key'"
            ).fetchall()
        except sqlite3.OperationalError:  # tables not created yet
            return []
    return [r[0] for r in rows]


def _start(study: Path, db: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*PAYOFF, "run", str(study), "--storage", str(db)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=study.parent,
    )


def _wait_for(db: Path, n: int, proc: subprocess.Popen[str], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while len(_completed(db)) < n:
        assert proc.poll() is None, proc.communicate()[0]
        assert time.monotonic() < deadline, "trials did not complete in time"
        time.sleep(0.2)


def _finish(study: Path, db: Path) -> str:
    done = subprocess.run(
        [*PAYOFF, "run", str(study), "--storage", str(db)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=study.parent,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.slow
def test_sigkill_midway_then_rerun_completes_every_trial_exactly_once(tmp_path: Path) -> None:
    study, db = _study(tmp_path), tmp_path / "p.db"
    proc = _start(study, db)
    _wait_for(db, 2, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    kept = _completed(db)
    assert 2 <= len(kept) < N_PLANNED
    out = _finish(study, db)
    assert f"{len(kept)} already done" in out
    done = Counter(_completed(db))
    assert len(done) == N_PLANNED and set(done.values()) == {1}
    assert set(kept) <= set(done)


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_says_what_is_kept(tmp_path: Path) -> None:
    study, db = _study(tmp_path), tmp_path / "p.db"
    proc = _start(study, db)
    _wait_for(db, 1, proc)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert "Traceback" not in out
    # The count is the observer's (the storage is left alone after Ctrl-C) and agrees with it.
    assert f"stopped: {len(_completed(db))} completed trials are kept" in out, out
    _finish(study, db)
    assert Counter(_completed(db)).most_common(1)[0][1] == 1
    assert len(_completed(db)) == N_PLANNED


@pytest.mark.slow
def test_two_workers_run_every_trial_exactly_once(tmp_path: Path) -> None:
    study, db = _study24(tmp_path), tmp_path / "p.db"
    done = subprocess.run(
        [*PAYOFF, "run", str(study), "--storage", str(db), "--jobs", "2"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=study.parent,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    completed = Counter(_completed(db))
    assert len(completed) == 24 and set(completed.values()) == {1}
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        owners = con.execute(
            "SELECT COUNT(DISTINCT json_extract(value_json, '$.pid')) FROM trial_user_attributes "
            "WHERE key = 'owner'"
        ).fetchone()[0]
    assert owners == 2  # both workers ran trials


def _children(pid: int) -> list[int]:
    import psutil

    # Workers are forked (or spawned) Python processes; the resource tracker is not one.
    return [
        c.pid
        for c in psutil.Process(pid).children()
        if "resource_tracker" not in " ".join(c.cmdline())
    ]


@pytest.mark.slow
def test_killing_the_coordinator_then_rerunning_runs_every_trial_once(tmp_path: Path) -> None:
    # A killed worker is healed by the same command (tests/study/test_many_runs.py).
    study, db = _study24(tmp_path), tmp_path / "p.db"
    proc = subprocess.Popen(
        [*PAYOFF, "run", str(study), "--storage", str(db), "--jobs", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=study.parent,
    )
    _wait_for(db, 2, proc)
    workers = _children(proc.pid)
    assert len(workers) == 1  # the coordinator runs trials too
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=300)
    time.sleep(2)  # orphaned workers notice their coordinator is gone within a second
    _finish(study, db)
    done = Counter(_completed(db))
    assert len(done) == 24 and set(done.values()) == {1}


def test_a_handled_ctrl_c_keeps_its_exit_code_under_python_m(tmp_path: Path) -> None:
    # CPython kills `python -m` by SIGINT at exit when a Ctrl-C ever escaped a string exec
    # (a dataclass built during an import), even after the program handled it; main()
    # clears that mark, so `payoff run` interrupted there still exits 130.
    (tmp_path / "interrupted.py").write_text(
        "import sys\n"
        "from payoff.cli import _app\n"
        "def app():\n"
        "    try:\n"
        "        exec('raise KeyboardInterrupt')\n"
        "    except KeyboardInterrupt:\n"
        "        sys.exit(130)\n"
        "_app.app = app\n"
        "_app.main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "interrupted"], cwd=tmp_path, capture_output=True, timeout=60
    )
    assert done.returncode == 130
