"""Data-parallel training with real worker processes (gloo on this CPU machine).

Every launch starts two Python processes that import torch, so the runs are shared by
module-scoped fixtures and the tests are marked slow.
"""

from __future__ import annotations

import dataclasses
import signal
import time
from collections.abc import Callable

import numpy as np
import psutil
import pytest
import torch

from payoff._errors import DivergedError, TrialError, TrialSkipped
from payoff.levers import RunPlan
from payoff.meter import Reading, measure
from payoff.tasks import Task, load_task
from payoff.train import TrainResult, predict, score, train_model
from payoff.train._parallel import FAULT_ENV, TIMEOUT_ENV, backend_for

pytestmark = pytest.mark.slow

EPOCHS = 4
# Two workers split every global batch and all-reduce (average) the gradients of equal
# loss weights, so they take the same steps as one process up to float summation order:
# the curves agree to far better than this.
ACCURACY_TOLERANCE = 0.02


def _rank_processes() -> list[psutil.Process]:
    """Return this test process's descendants that are data-parallel workers."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "payoff.train._rank" in " ".join(child.cmdline()):
                found.append(child)
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
    return found


@pytest.fixture(scope="module")
def digits() -> Task:
    return load_task("sklearn:digits")


def _plan(task: Task, **changes: object) -> RunPlan:
    plan = RunPlan(
        n_train=len(task.y_train),
        model_size="small",
        epochs=EPOCHS,
        optimizer="adam",
        lr=3e-3,
        batch_size=64,
        weight_decay=0.0,
        dropout=0.0,
        patience=None,
    )
    return dataclasses.replace(plan, **changes)  # type: ignore[arg-type]


def _train(
    task: Task,
    plan: RunPlan,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainResult:
    rows = np.arange(len(task.y_train))
    return train_model(
        task, plan, family="mlp", metric="accuracy", seed=0, rows=rows, on_epoch=on_epoch
    )


@dataclasses.dataclass
class Runs:
    one: TrainResult
    two: TrainResult
    reading: Reading
    epochs_seen: list[int]
    points_seen: list[dict[str, float]]
    workers_during_one: int
    workers_during_two: int


@pytest.fixture(scope="module")
def runs(digits: Task) -> Runs:
    seen: list[int] = []
    points: list[dict[str, float]] = []
    during: list[int] = []

    def one_epoch(epoch: int, point: dict[str, float]) -> None:
        during.append(len(_rank_processes()))

    def two_epoch(epoch: int, point: dict[str, float]) -> None:
        seen.append(epoch)
        points.append(point)
        during.append(len(_rank_processes()))

    one = _train(digits, _plan(digits), one_epoch)
    workers_during_one = max(during)
    during.clear()
    with measure("two-workers") as meter:
        two = _train(digits, _plan(digits, workers=2), two_epoch)
    return Runs(one, two, meter.reading, seen, points, workers_during_one, max(during))


def test_two_workers_learn_what_one_does(runs: Runs) -> None:
    one, two = runs.one, runs.two
    assert [p["epoch"] for p in two.curve] == list(range(1, EPOCHS + 1))
    final_one, final_two = one.curve[-1]["val_accuracy"], two.curve[-1]["val_accuracy"]
    assert final_one > 0.85
    assert abs(final_two - final_one) <= ACCURACY_TOLERANCE
    for a, b in zip(one.curve, two.curve, strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-3)
    # FLOPs are counted per example on one rank and scaled to every example.
    assert two.flops == pytest.approx(one.flops, rel=1e-6)
    assert (two.epochs_run, two.best_epoch, two.stopped_early) == (EPOCHS, one.best_epoch, False)


def test_the_parent_gets_the_best_weights(runs: Runs, digits: Task) -> None:
    model = runs.two.model
    assert set(model.state_dict()) == set(runs.one.model.state_dict())
    output = predict(model, torch.from_numpy(digits.X_val), digits.kind)
    best = max(p["val_accuracy"] for p in runs.two.curve)
    assert score(digits.kind, digits.y_val, output)["accuracy"] == pytest.approx(best)


def test_each_epoch_reaches_the_parent_while_training(runs: Runs) -> None:
    assert runs.epochs_seen == list(range(1, EPOCHS + 1))
    assert runs.points_seen == runs.two.curve
    # The callbacks fired while both workers were still running: streamed, not replayed.
    assert runs.workers_during_two == 2


def test_parallel_facts(runs: Runs) -> None:
    facts = runs.two.parallel
    assert facts is not None
    assert facts["workers"] == 2 and facts["backend"] == "gloo"
    assert facts["threads_per_worker"] == max(1, torch.get_num_threads() // 2)
    for key in ("startup_s", "train_s", "shutdown_s", "workers_cpu_s"):
        assert 0 < float(facts[key]) < 300, key
    assert facts["train_s"] == runs.two.train_s
    assert float(facts["wall_s"]) > float(facts["startup_s"]) + float(facts["train_s"])
    assert float(facts["workers_peak_mem_bytes"]) > 50e6  # two interpreters with torch


def test_one_worker_trains_in_process(runs: Runs) -> None:
    assert runs.one.parallel is None
    assert runs.workers_during_one == 0
    assert runs.one.train_s > 0


def test_the_meter_counts_the_workers(runs: Runs) -> None:
    facts = runs.two.parallel
    assert facts is not None
    # The workers did the training; the parent mostly waited. Their CPU is in the reading.
    assert runs.reading.cpu_s >= float(facts["workers_cpu_s"]) > 1.0
    assert runs.reading.peak_mem_method.endswith("+children")
    assert runs.reading.peak_mem_bytes > float(facts["workers_peak_mem_bytes"])


def test_no_worker_outlives_the_run(runs: Runs) -> None:
    assert _rank_processes() == []


def test_a_killed_worker_fails_the_trial_quickly(digits: Task) -> None:
    killed: list[int] = []

    def kill_rank_1(epoch: int, point: dict[str, float]) -> None:
        for proc in _rank_processes():
            if proc.cmdline()[-1] == "1" and not killed:
                proc.send_signal(signal.SIGKILL)
                killed.append(proc.pid)

    started = time.monotonic()
    with pytest.raises(TrialError) as caught:
        _train(digits, _plan(digits, workers=2, epochs=50), kill_rank_1)
    assert killed
    message = str(caught.value)
    assert "data-parallel training (2 workers, gloo) failed in epoch" in message
    assert "worker 1 was killed by SIGKILL" in message
    assert time.monotonic() - started < 120
    assert _rank_processes() == []


def test_a_hung_worker_fails_the_trial_after_the_timeout(
    digits: Task, monkeypatch: pytest.MonkeyPatch
) -> None:
    timeout_s = 10
    monkeypatch.setenv(TIMEOUT_ENV, str(timeout_s))
    monkeypatch.setenv(FAULT_ENV, "1:2:hang")
    started = time.monotonic()
    with pytest.raises(TrialError) as caught:
        _train(digits, _plan(digits, workers=2))
    elapsed = time.monotonic() - started
    message = str(caught.value)
    # Rank 0 gives up waiting for rank 1 in the epoch's all-reduce; rank 1 is then killed.
    assert "failed in epoch 2: worker 0 exited with code 1 after waiting over 10 s" in message
    assert "stopped worker(s) 1" in message and "Timed out" in message
    assert timeout_s <= elapsed < timeout_s + 90
    assert _rank_processes() == []


def test_rank_0_stops_every_worker_early(digits: Task) -> None:
    # With lr=0 the validation metric never improves after epoch 1: patience 1 ends it at 2.
    result = _train(digits, _plan(digits, workers=2, lr=0.0, epochs=6, patience=1))
    assert (result.epochs_run, result.best_epoch, result.stopped_early) == (2, 1, True)
    assert [p["epoch"] for p in result.curve] == [1, 2]
    assert _rank_processes() == []


def test_a_diverging_run_raises_the_workers_error(digits: Task) -> None:
    plan = _plan(digits, workers=2, optimizer="sgd", lr=1e12, epochs=3)
    with pytest.raises(DivergedError, match="diverged: training loss became"):
        _train(digits, plan)
    assert _rank_processes() == []


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU may run tf32")
def test_a_precision_the_device_lacks_is_skipped_before_launching(digits: Task) -> None:
    with pytest.raises(TrialSkipped, match="tf32"):
        _train(digits, _plan(digits, workers=2, precision="tf32"))
    assert _rank_processes() == []


@pytest.mark.skipif(torch.cuda.device_count() >= 64, reason="needs fewer than 64 GPUs")
def test_too_few_gpus_say_why() -> None:
    n_gpus = torch.cuda.device_count()
    with pytest.raises(TrialSkipped, match=f"needs 64 GPUs .*this machine has {n_gpus}"):
        backend_for("cuda", 64)
    assert backend_for("cpu", 64) == "gloo"
