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
from typing import TYPE_CHECKING, Any

from payoff.config import StudyConfig
from payoff.study._runner import RunObserver, _Prepared, _run_waiting
from payoff.study._study import Study

if TYPE_CHECKING:
    import optuna

    from payoff.study._design import PlannedTrial


class _Forward(RunObserver):
    """A worker's observer: sends each finished trial to the coordinator's queue."""

    def __init__(self, events: Any) -> None:
        self.events = events

    def on_trial_end(self, number: int, key: str, state: str, attrs: Mapping[str, Any]) -> None:
        keep = ("wall_s", "cost_usd_compute", "cost_usd_energy", "cost_usd_total", "fail_reason")
        brief = {k: v for k, v in attrs.items() if k in keep or k.startswith(("val_", "test_"))}
        self.events.put(("trial", number, key, state, brief))


def _worker(
    source: _Prepared | dict[str, Any],
    url: str,
    artifacts: str | None,
    threads: int,
    events: Any,
) -> None:
    """One worker process: forked with the coordinator's prepared study, or spawned with
    the study's config to prepare again."""
    import optuna
    import torch

    from payoff.study._design import plan_trials
    from payoff.study._runner import _energy_meter, _prepare
    from payoff.study._storage import open_storage

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
    _energy_meter.cache_clear()  # CodeCarbon's tracker belongs to one process
    forked = isinstance(source, _Prepared)
    config = source.config if forked else StudyConfig.model_validate(source)
    study = optuna.load_study(study_name=config.study, storage=open_storage(url, create=False))
    prepared = source if forked else _prepare(config, None, study)
    result = Study(study, storage=url, artifacts=artifacts)
    try:
        stop = _run_waiting(
            study, prepared, plan_trials(config, prepared.data_version), result, _Forward(events)
        )
    except KeyboardInterrupt:
        stop = "interrupted"
    events.put(("stop", os.getpid(), stop))


def run_workers(
    *,
    prepared: _Prepared,
    study: optuna.Study,
    planned: list[PlannedTrial],
    result: Study,
    jobs: int,
    observer: RunObserver,
) -> str | None:
    """Run the queued trials in ``jobs`` processes; return why they stopped early, if they did.

    This process is one of them. The ``jobs - 1`` others are forked from it once the study
    is prepared, so they start at once (spawned, where a platform cannot fork, they import
    and prepare again).
    """
    import torch

    threads = max(1, (os.cpu_count() or 1) // jobs)
    own_threads = torch.get_num_threads()
    torch.set_num_threads(threads)  # this process's share of the cores, like each worker's
    source: _Prepared | dict[str, Any]
    if "fork" in multiprocessing.get_all_start_methods():
        # Forked workers start at once: torch imported, the data loaded. Nothing has run
        # torch's OpenMP pool yet (each process warms up after the fork), so forking is safe.
        ctx, source = multiprocessing.get_context("fork"), prepared
    else:
        ctx, source = multiprocessing.get_context("spawn"), prepared.config.model_dump(mode="json")
    events = ctx.Queue()
    procs = [
        ctx.Process(
            target=_worker,
            args=(
                source,
                result.storage,
                str(result.artifacts) if result.artifacts else None,
                threads,
                events,
            ),
            daemon=True,
        )
        for _ in range(jobs - 1)
    ]
    for p in procs:
        p.start()
    lock = threading.Lock()
    stops: list[str | None] = []

    def relay() -> None:
        # The workers' finished trials reach the observer from this thread.
        while any(p.is_alive() for p in procs) or not events.empty():
            try:
                event = events.get(timeout=0.5)
            except queue.Empty:
                continue
            if event[0] == "trial":
                _, number, key, state, attrs = event
                with lock:
                    observer.on_trial_end(number, key, state, attrs)
            else:
                stops.append(event[2])

    relay_thread = threading.Thread(target=relay, daemon=True)
    relay_thread.start()
    try:
        stops.append(_run_waiting(study, prepared, planned, result, _Locked(observer, lock)))
    except KeyboardInterrupt:
        for p in procs:
            p.terminate()  # SIGTERM: each worker stores its trial in flight as interrupted
        for p in procs:
            p.join(timeout=30)
        raise
    finally:
        torch.set_num_threads(own_threads)
    for p in procs:
        p.join()
    relay_thread.join()
    dead = [p.exitcode for p in procs if p.exitcode]
    if dead:
        return f"{len(dead)} worker(s) died (exit codes {dead}); run again to finish the study"
    return next((s for s in stops if s), None)


class _Locked(RunObserver):
    """This process's observer: its calls take turns with the relayed ones."""

    def __init__(self, inner: RunObserver, lock: threading.Lock) -> None:
        self.inner, self.lock = inner, lock

    def on_trial_start(self, number: int, key: str) -> None:
        with self.lock:
            self.inner.on_trial_start(number, key)

    def on_trial_end(self, number: int, key: str, state: str, attrs: Mapping[str, Any]) -> None:
        with self.lock:
            self.inner.on_trial_end(number, key, state, attrs)
