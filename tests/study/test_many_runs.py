"""Independent `payoff run` commands on one study, started together on a fresh storage: every
planned trial runs exactly once, and every command ends well."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import optuna
import pytest

from tests.conftest import write_study
from tests.postgres import postgres_server

N_PLANNED = 12  # 3 data x 2 compute x 2 seeds


def _runs_together(study: Path, url: str, n: int, cwd: Path) -> list[subprocess.CompletedProcess]:
    cmd = [sys.executable, "-m", "payoff", "run", str(study), "--storage", url]
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=cwd)
        for _ in range(n)
    ]
    out = []
    for p in procs:
        stdout, _ = p.communicate(timeout=600)
        out.append(subprocess.CompletedProcess(cmd, p.returncode, stdout))
    return out


def _once_each(url: str, *, interrupted: int = 0) -> None:
    trials = optuna.load_study(study_name="tiny", storage=url).trials
    complete = Counter(t.user_attrs["plan_key"] for t in trials if t.state.name == "COMPLETE")
    assert len(complete) == N_PLANNED and set(complete.values()) == {1}, complete
    # Nothing was queued twice, but for a trial whose worker was killed (queued again once).
    assert len(trials) == N_PLANNED + interrupted, [t.state.name for t in trials]


def _study(tmp: Path) -> Path:
    return write_study(
        tmp / "s.yaml", levers={"data": [0.25, 0.5, 1.0], "compute": [1, 2]}, seeds=2
    )


@pytest.mark.slow
@pytest.mark.parametrize("n", [4])
def test_independent_runs_on_a_fresh_sqlite_file(tmp_path: Path, n: int) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    for done in _runs_together(_study(tmp_path), url, n, tmp_path):
        assert done.returncode == 0, done.stdout
        assert "Traceback" not in done.stdout
    _once_each(url)


@pytest.mark.slow
def test_independent_runs_on_postgresql(tmp_path: Path) -> None:
    with postgres_server() as url:
        for done in _runs_together(_study(tmp_path), url, 3, tmp_path):
            assert done.returncode == 0, done.stdout
        _once_each(url)


@pytest.mark.slow
def test_a_worker_killed_mid_trial_leaves_the_study_complete(tmp_path: Path) -> None:
    import signal
    import time

    import psutil

    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    study = write_study(
        tmp_path / "s.yaml",
        levers={"data": [0.25, 0.5, 1.0], "compute": [4, 8]},
        seeds=2,
    )
    cmd = [sys.executable, "-m", "payoff", "run", str(study), "--storage", url, "--jobs", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    killed = False
    deadline = time.monotonic() + 120
    while not killed and time.monotonic() < deadline and proc.poll() is None:
        workers = psutil.Process(proc.pid).children()
        running = (
            [
                t
                for t in optuna.load_study(study_name="tiny", storage=url).trials
                if t.state.name == "RUNNING"
                and t.user_attrs.get("owner", {}).get("pid") in {w.pid for w in workers}
            ]
            if workers and Path(tmp_path / "jobs.db").exists()
            else []
        )
        if running:
            os.kill(running[0].user_attrs["owner"]["pid"], signal.SIGKILL)
            killed = True
        else:
            time.sleep(0.2)
    out, _ = proc.communicate(timeout=600)
    assert killed, out
    assert proc.returncode == 0, out
    _once_each(url, interrupted=1)


@pytest.mark.parametrize(("silent_s", "requeued"), [(3600.0, True), (0.0, False)])
def test_a_trial_owned_on_another_host_runs_again_once_its_heartbeat_is_stale(
    tmp_path: Path, silent_s: float, requeued: bool
) -> None:
    import time

    import payoff
    from payoff.config import load_config
    from payoff.study._design import plan_trials
    from payoff.study._runner import _distributions, claim

    db = tmp_path / "p.db"
    payoff.run(write_study(tmp_path / "a.yaml", levers={"data": [0.5]}), storage=db)
    grown = write_study(tmp_path / "b.yaml", levers={"data": [0.5, 1.0]})
    planned = plan_trials(load_config(grown))
    (new,) = [p for p in planned if p.setting["data"] == 1.0]
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{db}")
    study.enqueue_trial(new.params(), user_attrs={"plan_key": new.key})
    # Another machine took it, then (for the stale case) went silent an hour ago.
    taken = claim(
        study, _distributions(study, planned), host="elsewhere", started=time.time() - 3600
    )
    assert taken is not None
    study._storage.set_trial_user_attr(taken._trial_id, "heartbeat", time.time() - silent_s)
    payoff.run(grown, storage=db)
    trials = [t for t in study.get_trials() if t.user_attrs.get("plan_key") == new.key]
    states = sorted(t.state.name for t in trials)
    if requeued:
        assert states == ["COMPLETE", "FAIL"]
        assert "interrupted" in next(t for t in trials if t.state.name == "FAIL").user_attrs
    else:  # a live owner elsewhere keeps its trial
        assert states == ["RUNNING"]


@pytest.mark.slow
def test_a_trial_killed_after_uploading_leaves_no_orphan_weights(tmp_path: Path) -> None:
    import signal
    import time

    (tmp_path / "slowmod.py").write_text(
        "import os, time\n"
        "def train(trial):\n"
        "    trial.save_weights({'w': [float(trial.seed)]})\n"
        "    if os.environ.get('SLOW'):\n"
        "        time.sleep(120)\n"
        "    return {'accuracy': 0.5}\n"
    )
    study = tmp_path / "s.yaml"
    study.write_text(
        "study: slow\ntask: {function: 'slowmod:train', metric: accuracy}\nlevers: {x: [1]}\n"
    )
    url = f"sqlite:///{tmp_path / 'p.db'}"
    cmd = [sys.executable, "-m", "payoff", "run", str(study), "--storage", url]
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "SLOW": "1"}
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL)
    folder = tmp_path / "p-artifacts"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (folder.is_dir() and any(folder.iterdir())):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (orphan,) = list(folder.iterdir())  # uploaded, but its trial never finished
    env.pop("SLOW")
    done = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    trials = optuna.load_study(study_name="slow", storage=url).trials
    (complete,) = [t for t in trials if t.state.name == "COMPLETE"]
    assert [p.name for p in folder.iterdir()] == [complete.user_attrs["weights_artifact"]]
    assert not orphan.exists()
