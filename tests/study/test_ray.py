"""Trials as Ray tasks on a real local Ray instance (loopback), stopped at the end."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import ray

import payoff
from payoff.config import config_from_dict


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
    )
    yield
    ray.shutdown()


def dies_at_three(trial: payoff.Trial) -> dict[str, float]:
    """A trial function whose process dies for x == 3, as a crashed worker would."""
    if trial.lever("x") == 3:
        os._exit(1)
    return {"score": float(trial.lever("x"))}


def _study(name: str, retries: int, **task: str) -> payoff.StudyConfig:
    return config_from_dict(
        {
            "study": name,
            "task": task or {"function": "tests.study.test_ray:dies_at_three", "metric": "score"},
            "levers": {"x": [1, 2, 3, 4]},
            "executor": {"kind": "ray", "address": "local", "retries": retries},
        }
    )


@pytest.mark.slow
def test_built_in_trials_run_as_ray_tasks(local_ray: None, tmp_path: Path) -> None:
    config = config_from_dict(
        {
            "study": "tiny-ray",
            "task": {"dataset": "sklearn:wine", "metric": "accuracy"},
            "levers": {"data": [0.5, 1.0], "compute": [2, 3]},
            "train": {"model": "small"},
            "executor": {"kind": "ray"},
        }
    )
    frame = payoff.run(config, storage=tmp_path / "p.db").trials_frame()
    assert len(frame) == 4 and (frame["state"] == "COMPLETE").all()
    assert (frame["energy_kwh"] > 0).all() and frame["weights_artifact"].notna().all()


@pytest.mark.slow
@pytest.mark.parametrize("retries", [0, 1])
def test_a_worker_that_dies_fails_its_trial_and_the_study_finishes(
    local_ray: None, tmp_path: Path, retries: int
) -> None:
    study = payoff.run(_study(f"dies-{retries}", retries), storage=tmp_path / "p.db")
    frame = study.trials_frame()
    assert sorted(frame[frame["state"] == "COMPLETE"]["x"]) == [1, 2, 4]
    failed = frame[frame["state"] == "FAIL"]
    assert list(failed["x"]) == [3]
    assert "ray worker died" in failed["fail_reason"].iloc[0]
    # With a retry, the first death was queued again, ran once more, and died again.
    attempts = [t for t in study.optuna.trials if t.params.get("x") == 3]
    assert len(attempts) == 1 + retries


@pytest.mark.slow
def test_a_ray_run_and_an_independent_run_share_one_study(local_ray: None, tmp_path: Path) -> None:
    import subprocess
    import sys

    import yaml

    from tests.study.test_many_runs import _once_each, _study

    study = _study(tmp_path)
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    other = subprocess.Popen(
        [sys.executable, "-m", "payoff", "run", str(study), "--storage", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=tmp_path,
    )
    on_ray = {**yaml.safe_load(study.read_text()), "executor": {"kind": "ray", "address": "local"}}
    payoff.run(config_from_dict(on_ray), storage=url)
    out, _ = other.communicate(timeout=600)
    assert other.returncode == 0, out
    _once_each(url)  # every planned trial exactly once, whichever runner took it
