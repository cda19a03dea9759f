"""Run a study's queued trials in several worker processes against one storage.

The queue is Optuna's: every planned trial waits in the storage, and each worker pops the
next one, so no trial runs twice and none is lost, on one machine or many (PostgreSQL).
Each worker checks the study's spend before starting a trial, so a budget is overshot by at
most the trials already running.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from payoff.config import StudyConfig
from payoff.study._runner import RunObserver


class _Forward(RunObserver):
    """A worker's observer: sends each finished trial to the coordinator's queue."""

    def __init__(self, events: Any) -> None:
        self.events = events

    def on_trial_end(self, number: int, key: str, state: str, attrs: Mapping[str, Any]) -> None:
        keep = ("wall_s", "cost_usd_compute", "cost_usd_energy", "cost_usd_total", "fail_reason")
        brief = {k: v for k, v in attrs.items() if k in keep or k.startswith(("val_", "test_"))}
        self.events.put(("trial", number, key, state, brief))


def _worker(
    config_json: dict[str, Any], url: str, artifacts: str | None, threads: int, events: Any
) -> None:
    import optuna
    import torch

    from payoff.study._design import plan_trials
    from payoff.study._runner import _prepare, _run_waiting
    from payoff.study._storage import open_storage
    from payoff.study._study import Study

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    parent = os.getppid()

    def watch_parent() -> None:
        # A coordinator killed with SIGKILL cannot stop its workers: they stop themselves,
        # storing the trial in flight as interrupted, so a rerun owns the study alone.
        while os.getppid() == parent:
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch_parent, daemon=True).start()
    # Workers share the cores: one torch thread pool each would oversubscribe them.
    torch.set_num_threads(threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    config = StudyConfig.model_validate(config_json)
    study = optuna.load_study(study_name=config.study, storage=open_storage(url, create=False))
    prepared = _prepare(config, None, study)
    result = Study(study, storage=url, artifacts=artifacts)
    try:
        stop = _run_waiting(
            study, prepared, plan_trials(config, prepared.data_version), result, _Forward(events)
        )
    except KeyboardInterrupt:
        stop = "interrupted"
    events.put(("stop", os.getpid(), stop))


def run_workers(
    config: StudyConfig,
    *,
    url: str,
    artifacts: str | Path | None,
    jobs: int,
    observer: RunObserver,
) -> str | None:
    """Run the queued trials in ``jobs`` processes; return why they stopped early, if they did."""
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked torch state
    events = ctx.Queue()
    threads = max(1, (os.cpu_count() or 1) // jobs)
    procs = [
        ctx.Process(
            target=_worker,
            args=(
                config.model_dump(mode="json"),
                url,
                str(artifacts) if artifacts else None,
                threads,
                events,
            ),
            daemon=True,
        )
        for _ in range(jobs)
    ]
    for p in procs:
        p.start()
    stops: list[str | None] = []
    try:
        while any(p.is_alive() for p in procs) or not events.empty():
            try:
                event = events.get(timeout=0.5)
            except queue.Empty:
                continue
            if event[0] == "trial":
                _, number, key, state, attrs = event
                observer.on_trial_end(number, key, state, attrs)
            else:
                stops.append(event[2])
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()  # SIGTERM: each worker stores its trial in flight as interrupted
        for p in procs:
            p.join(timeout=30)
        raise
    for p in procs:
        p.join()
    dead = [p.exitcode for p in procs if p.exitcode]
    if dead:
        return f"{len(dead)} worker(s) died (exit codes {dead}); run again to finish the study"
    return next((s for s in stops if s), None)
