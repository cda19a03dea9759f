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
