"""Run (or resume) a study: plan its trials in Optuna, run each metered, stop on budget."""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import logging
import math
import os
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState

from payoff._errors import ConfigError, TrialError, TrialSkipped
from payoff.config import StudyConfig, load_config
from payoff.levers import LeverPrices, n_examples
from payoff.returns import METRICS, cost_matrix
from payoff.study._design import PlannedTrial, encode, plan_trials
from payoff.study._feedback import data_version, records, with_feedback
from payoff.study._ledger import label_grades, labels_usd_per_example, ledger, spend_usd
from payoff.study._pretraining import (
    StartingPoint,
    check_pretraining,
    prepare_pretraining,
    uses_pretraining,
)
from payoff.study._storage import (
    artifact_store,
    artifacts_dir,
    open_storage,
    storage_url,
    study_lock,
)
from payoff.study._study import Study, trial_params
from payoff.study._trial import Trial
from payoff.tasks._augment import augmenter

if TYPE_CHECKING:
    from optuna.artifacts import FileSystemArtifactStore

    from payoff.meter import EnergyMeter
    from payoff.prices import HardwareChoice, PriceBook

_logger = logging.getLogger(__name__)

TrialFunction = Callable[[Trial], Mapping[str, float]]


class RunObserver:
    """Hooks for progress displays; the CLI draws rich bars from them. All are optional."""

    def on_plan(self, study: Study, *, n_planned: int, n_done: int, n_todo: int, why: str) -> None:
        """Called once the plan is in storage, before the first trial."""

    def on_trial_start(self, number: int, key: str) -> None:
        """Called when a trial starts."""

    def on_trial_end(self, number: int, key: str, state: str, attrs: Mapping[str, Any]) -> None:
        """Called when a trial is stored, complete or failed."""

    def on_stop(self, message: str) -> None:
        """Called once, with why the run stopped."""

    def on_new_version(self, kept_as: str, n_trials: int) -> None:
        """Called when ``new_version`` kept the stored study under another name."""


@dataclass(frozen=True)
class _Prepared:
    config: StudyConfig
    function: Callable[[Trial], Mapping[str, float]]
    book: PriceBook
    hardware: HardwareChoice
    labels_usd_per_example: float
    direction: str
    warm_up: Callable[[], None]
    n_available: int | None
    data_version: int = 0
    # Makes the study's pretrained starting points (once a process) before its first trial.
    pretrain: Callable[[EnergyMeter, Path], None] = lambda energy, cache_dir: None


def _prepare(
    config: StudyConfig, function: TrialFunction | None, study: optuna.Study | None = None
) -> _Prepared:
    """Check everything that needs no storage, so bad input never touches stored results.

    With the stored ``study``, its feedback rows join the training set.
    """
    from payoff.prices import load_price_book, resolve_hardware
    from payoff.returns import METRICS, check_metric
    from payoff.study._builtin import builtin_trial, task_of

    book = load_price_book(config.prices)
    hardware = resolve_hardware(book, config.hardware)
    labels = labels_usd_per_example(config, book)
    metric = config.task.metric
    version = 0 if study is None else data_version(study)
    if config.task.dataset is not None:
        task = task_of(config)
        if version:
            task = with_feedback(task, records(study))
        metric = metric or ("accuracy" if task.kind == "classification" else "r2")
        n_classes = task.n_classes if task.kind == "classification" else None
        for name in [metric, *config.target, *(config.pilot.target or {})]:
            check_metric(name, task.kind, n_classes=n_classes)
        _check_target_bounds(config)
        if task.kind == "classification":
            _check_value_classes(config, task.classes)
        if config.task.model == "cnn" and task.image_shape is None:
            raise ConfigError(
                f"task.model: 'cnn' needs image-shaped rows and {config.task.dataset} has none; "
                "use model: mlp or linear."
            )
        for name in config.levers.augmentation or ():
            augmenter(name, task)  # a preset that does not fit the rows is a usage error
        check_pretraining(config, task)
        prices = LeverPrices(
            labels_usd_per_example=labels, label_grades=label_grades(config, book)
        )
        points: dict[str, StartingPoint] = {}
        fn: TrialFunction = function or (lambda trial: builtin_trial(trial, prices, task, points))

        @functools.cache
        def pretrain(energy: EnergyMeter, cache_dir: Path) -> None:
            if uses_pretraining(config):
                planned = plan_trials(config, version)
                points.update(
                    prepare_pretraining(
                        config,
                        task,
                        planned,
                        book=book,
                        hardware=hardware.entry,
                        energy=energy,
                        cache_dir=cache_dir,
                    )
                )

        def warm() -> None:
            from payoff.train import warm_up

            warm_up(task, config.task.model, str(metric))
    else:
        assert config.task.function is not None  # the loader requires one of the two
        fn = function or _import_function(config.task.function)

        def warm() -> None:
            pass

        def pretrain(energy: EnergyMeter, cache_dir: Path) -> None:
            pass

    config = config.model_copy(update={"task": config.task.model_copy(update={"metric": metric})})
    assert metric is not None
    direction = config.task.direction or (
        METRICS[metric].direction if metric in METRICS else "maximize"
    )
    n_available = len(task.y_train) if config.task.dataset is not None else None
    if config.design == "pilot" and n_available is None:
        raise ConfigError(
            "design 'pilot' runs built-in tasks (task.dataset); for your own trial function, "
            "run a grid of data counts and use payoff forecast."
        )
    if n_available is not None:
        _check_data_counts(config, n_available)
    # Once per run: warming up again between pilot rungs would waste time.
    return _Prepared(
        config,
        fn,
        book,
        hardware,
        labels,
        direction,
        functools.cache(warm),
        n_available,
        version,
        pretrain,
    )


def _check_value_classes(config: StudyConfig, classes: Sequence[str]) -> None:
    """Refuse a value section that names classes the task lacks, before anything runs."""
    value = config.value
    mix = getattr(value.baseline, "error_mix", None)
    n = max(len(classes), 2)
    for where, costs in (
        ("value.error_costs_usd", value.error_costs_usd),
        ("value.baseline.error_mix", mix),
    ):
        if costs is not None:
            cost_matrix(n, classes, usd_per_error=0.0, error_costs=costs, where=where)


def _check_target_bounds(config: StudyConfig) -> None:
    """Refuse a target a score in [0, 1] can never meet (``accuracy: 80`` meant 0.80)."""
    for where, targets in (("target", config.target), ("pilot.target", config.pilot.target)):
        for name, values in (targets or {}).items():
            for v in values if isinstance(values, list) else [values]:
                bounded = name in METRICS and METRICS[name].kind == "classification"
                if bounded and not 0 <= v <= 1:
                    hint = f"; for {v:g}% write {v / 100:g}" if 1 < v <= 100 else ""
                    raise ConfigError(
                        f"{where}.{name}: {v:g} is outside [0, 1], where {name} lies{hint}."
                    )


def _check_data_counts(config: StudyConfig, n_available: int) -> None:
    """Refuse data counts above the training split: they would silently run on all of it."""
    too_many = [v for v in config.lever_values().get("data", []) if float(v) > n_available]
    if too_many:
        raise ConfigError(
            f"levers.data: {', '.join(f'{v:g}' for v in too_many)} "
            f"{'is' if len(too_many) == 1 else 'are'} more than the {n_available:,} examples "
            f"of {config.task.dataset}'s training split (after its validation and test "
            f"splits). Use counts up to {n_available:,}, or fractions of it (<= 1)."
        )


def _import_function(path: str) -> TrialFunction:
    import sys

    module_name, _, attr = path.partition(":")
    # The `payoff` script's sys.path starts at its own folder, not the working directory
    # (`python -m` starts at the latter): make a module beside the user importable either way.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as err:
        raise ConfigError(
            f"task.function: cannot import {path!r} ({err}). Give 'module:function' importable "
            "from the working directory."
        ) from None
    return getattr(obj, "function", obj)


def run(
    study: str | Path | StudyConfig,
    *,
    storage: str | Path | None = None,
    artifacts: str | Path | None = None,
    function: TrialFunction | None = None,
    observer: RunObserver | None = None,
    retry_failed: bool = False,
    jobs: int = 1,
    new_version: bool = False,
) -> Study:
    """Run a study, or resume it: completed trials are kept and never run again.

    Args:
        study: a study file path, or a validated ``StudyConfig``.
        storage: an Optuna storage URL or a SQLite file path (default ``payoff.db``).
        artifacts: the folder for trial weights (default: beside the SQLite file).
        function: the trial function, for studies built in code around one.
        observer: progress hooks.
        retry_failed: run again the trials stored as failed.
        jobs: worker processes running trials at once (grid and random designs).
        new_version: start the study afresh, keeping the stored one (its trials, feedback
            and config) under the next free name ``<study>.v1``, ``<study>.v2``...

    Raises:
        ConfigError: the study is invalid; nothing was written.
        KeyboardInterrupt: Ctrl-C; the trial in flight is stored as interrupted and a rerun
            runs it again.
    """
    config = study if isinstance(study, StudyConfig) else load_config(study)
    if jobs < 1:
        raise ConfigError(f"jobs must be at least 1, got {jobs}.")
    if (jobs > 1 or config.executor.kind == "ray") and (
        function is not None or config.design == "pilot"
    ):
        raise ConfigError(
            "parallel runs (--jobs, executor: ray) take built-in tasks and importable trial "
            "functions (task.function) of grid or random studies; a pilot decides one rung at "
            "a time. Run it with one job and the local executor."
        )
    prepared = _prepare(config, function)
    config = prepared.config
    observer = observer or RunObserver()
    url = storage_url(storage)
    if new_version:
        kept = _keep_as_version(url, config.study)
        if kept is not None:
            observer.on_new_version(*kept)
    _check_compatible(url, config)
    optuna_study = optuna.create_study(
        study_name=config.study,
        storage=open_storage(url, create=True),
        direction=prepared.direction,
        load_if_exists=True,
    )
    optuna_study.set_user_attr("config", config.model_dump(mode="json"))
    optuna_study.set_user_attr("payoff_version", _version())
    if prepared.n_available is not None:
        optuna_study.set_user_attr("n_train_available", prepared.n_available)
    _fail_orphans(optuna_study, artifact_store(url, artifacts))
    if data_version(optuna_study):
        prepared = _prepare(config, function, optuna_study)
    result = Study(optuna_study, storage=url, artifacts=artifacts)
    if config.design == "pilot":
        observer.on_stop(_run_pilot(optuna_study, prepared, result, observer, retry_failed))
        return result
    planned = plan_trials(config, prepared.data_version)
    optuna_study.set_user_attr("n_planned", len(planned))
    parallel = jobs > 1 or config.executor.kind == "ray"
    n_done, n_todo = _enqueue_missing(
        optuna_study,
        url,
        sorted(planned, key=_work, reverse=True) if parallel else planned,
        retry_failed=retry_failed,
    )
    observer.on_plan(
        result, n_planned=len(planned), n_done=n_done, n_todo=n_todo, why=prepared.hardware.reason
    )
    if config.executor.kind == "ray":
        from payoff.study._ray import run_ray

        stop = run_ray(config, study=optuna_study, url=url, artifacts=artifacts, observer=observer)
    elif jobs > 1:
        from payoff.study._workers import run_workers

        stop = run_workers(
            prepared=prepared,
            study=optuna_study,
            planned=planned,
            result=result,
            jobs=jobs,
            observer=observer,
        )
        if _fail_orphans(optuna_study, artifact_store(url, artifacts)):
            # A worker died mid-trial: its trial is queued again and runs here, so the
            # command ends with the study complete (or says why it is not).
            stop = _run_waiting(optuna_study, prepared, planned, result, observer)
    else:
        stop = _run_waiting(optuna_study, prepared, planned, result, observer)
    observer.on_stop(stop or "all planned trials done")
    return result


def _run_pilot(
    study: optuna.Study,
    prepared: _Prepared,
    result: Study,
    observer: RunObserver,
    retry_failed: bool,
) -> str:
    """Run the pilot's rungs until its answers are sure, its budget is spent or it tops out."""
    from payoff.study._pilot import PilotReport, decide, grid_estimate, ladder

    config = prepared.config
    assert prepared.n_available is not None  # checked in _prepare
    rungs = ladder(config, prepared.n_available)
    planned = [p for rung in rungs for p in rung]
    study.set_user_attr("n_planned", len(planned))
    keys = {p.key for p in planned}
    n_done = len(
        {
            t.user_attrs.get("plan_key")
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        }
        & keys
    )
    observer.on_plan(
        result,
        n_planned=len(planned),
        n_done=n_done,
        n_todo=len(planned) - n_done,
        why=prepared.hardware.reason,
    )
    stop, answers, n_rungs = "", [], 0
    for n_rungs, rung in enumerate(rungs, start=1):
        _enqueue_missing(study, result.storage, rung, retry_failed=retry_failed)
        budget_stop = _run_waiting(study, prepared, planned, result, observer)
        if budget_stop:
            stop = budget_stop
            break
        if n_rungs >= config.pilot.min_rungs:
            answers = decide(result.trials_frame(), config, prepared.n_available)
            if all(a.sure for a in answers):
                stop = f"sure enough after {n_rungs} rungs"
                break
    else:
        stop = "the ladder reached its largest setting (pilot.max_fraction) before being sure"
    frame = result.trials_frame()
    if not answers and len(frame):
        answers = decide(frame, config, prepared.n_available)
    usd, hours = _spent(study)
    n_grid, grid_usd, grid_hours, notes = grid_estimate(frame, config, prepared.n_available)
    done = frame[frame["state"] == "COMPLETE"] if len(frame) else frame
    # Labels are nested across rungs: labelling the largest rung's examples covers the rest.
    labels = done["cost_usd_labels"].max() if "cost_usd_labels" in done and len(done) else 0.0
    report = PilotReport(
        n_rungs=n_rungs,
        largest_n_train=int(done["n_train"].max()) if len(done) else 0,
        stop_reason=stop,
        answers=answers,
        spent_usd=usd,
        spent_hours=hours,
        grid_trials=n_grid,
        grid_cost_usd_estimate=grid_usd,
        grid_hours_estimate=grid_hours,
        notes=notes,
        spent_labels_usd=float(labels) if math.isfinite(labels) else 0.0,
        level=config.pilot.level,
        # The grid labels its largest data setting once (smaller settings are subsets).
        grid_labels_usd_estimate=prepared.labels_usd_per_example
        * max(
            n_examples(float(v), prepared.n_available)
            for v in config.lever_values().get("data", [1.0])
        ),
    )
    study.set_user_attr("pilot", report.as_dict())
    return f"pilot stopped: {stop}"


def _version() -> str:
    from payoff import __version__

    return __version__


def _check_compatible(url: str, config: StudyConfig) -> None:
    """Refuse to mix a changed task into an existing study of the same name."""
    from payoff._errors import StudyNotFoundError
    from payoff.study._storage import load_optuna_study

    try:
        existing = load_optuna_study(url, config.study)
    except StudyNotFoundError:
        return
    stored = existing.user_attrs.get("config", {})
    if not stored:
        return
    new = config.model_dump(mode="json")

    def meaning(cfg: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        grades = cfg.get("labels", {}).get("grades", {})
        return {
            "task": cfg.get("task", {}),
            "train": cfg.get("train", {}),
            # A grade's price may change (the ledger prices each trial); its error rate is
            # what its trials trained on.
            "labels": {"grades": {g: v.get("error_rate") for g, v in grades.items()}},
        }

    # The stored trials mean what their task, fixed training settings and label grades say:
    # another dataset, label, model family, metric, held learning rate or a grade's error
    # rate would mix results that do not compare. More lever values or seeds are welcome.
    changed = [
        (f"{section}.{k}", old.get(k), now.get(k))
        for section in ("task", "train", "labels")
        for old, now in [(meaning(stored)[section], meaning(new)[section])]
        for k in sorted(set(old) | set(now))
        if old.get(k) != now.get(k)
        and not (section == "task" and k == "metric" and not old.get(k))
    ]
    if changed:
        kind = "task" if all(c[0].startswith("task.") for c in changed) else "set-up"
        raise ConfigError(
            f"study {config.study!r} already exists in {url} with a different {kind} "
            f"({', '.join(f'{name}: {a!r} -> {b!r}' for name, a, b in changed)}): its stored "
            "trials would no longer mean what their settings say. Give the study another "
            "name, use another --storage, or run with --new-version to keep the stored study "
            f"as {config.study}.v1 (or the next free version) and start this one afresh; "
            "adding lever values or seeds is fine."
        )


def _keep_as_version(url: str, name: str) -> tuple[str, int] | None:
    """Move the stored study ``name`` to the next free ``name.vN``; return that name and its
    trial count, or None when there is no such study.

    Raises:
        ConfigError: a live process is running one of its trials.
    """
    from payoff._errors import StudyNotFoundError
    from payoff.study._storage import load_optuna_study, study_lock

    try:
        existing = load_optuna_study(url, name)
    except StudyNotFoundError:
        return None
    with study_lock(url, name):
        host = socket.gethostname()
        running = [
            t.number
            for t in existing.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            if not _orphaned(t, host)
        ]
        if running:
            raise ConfigError(
                f"study {name!r} in {url} has {len(running)} trials running in another "
                f"process (trial {running[0]}...): stop that run, or wait for it to end, "
                "before starting a new version."
            )
        taken = {s.study_name for s in existing._storage.get_all_studies()}
        kept_as = next(
            f"{name}.v{n}" for n in range(1, len(taken) + 2) if f"{name}.v{n}" not in taken
        )
        # Optuna cannot rename a study: copy it whole (trials keep their attributes, so
        # their weights in the artifact store), then delete the original.
        optuna.copy_study(
            from_study_name=name,
            from_storage=existing._storage,
            to_storage=existing._storage,
            to_study_name=kept_as,
        )
        n_trials = len(existing.get_trials(deepcopy=False))
        optuna.delete_study(study_name=name, storage=existing._storage)
        return kept_as, n_trials


def _alive(pid: int, started: float) -> bool:
    import psutil

    try:
        # A recycled pid belongs to a process that started after the trial did.
        return psutil.Process(pid).create_time() <= started + 1.0
    except psutil.Error:
        return False


@contextlib.contextmanager
def _deferred_interrupts() -> Iterator[None]:
    """Hold Ctrl-C and SIGTERM until the block's storage writes are done, then raise."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {
        sig: signal.signal(sig, lambda signum, frame: received.append(signum))
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if received:
            raise KeyboardInterrupt


# A running trial writes a heartbeat this often; one silent for STALE_S has lost its process
# (on another host, where payoff cannot ask whether the process is alive).
HEARTBEAT_S = 30.0
STALE_S = 300.0


@contextlib.contextmanager
def _heartbeat(study: optuna.Study, trial_id: int) -> Iterator[None]:
    """Write the trial's ``heartbeat`` attribute every HEARTBEAT_S while the block runs."""
    storage, stop = study._storage, threading.Event()

    def beat() -> None:
        while not stop.wait(HEARTBEAT_S):
            try:
                storage.set_trial_user_attr(trial_id, "heartbeat", time.time())
            except Exception:  # noqa: BLE001 - a missed beat only delays the stale check
                _logger.debug("trial %d: heartbeat not written", trial_id, exc_info=True)

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


def _orphaned(t: optuna.trial.FrozenTrial, host: str) -> bool:
    """Whether a running trial's process is gone."""
    owner = t.user_attrs.get("owner")
    if owner is None:
        # Killed between claiming and marking (a few ms): orphaned once it is stale.
        started = t.datetime_start.timestamp() if t.datetime_start else 0.0
        return time.time() - started > 60
    if owner["host"] == host:
        return not _alive(owner["pid"], owner["started"])
    # Another host's process: alive while its heartbeat is.
    return time.time() - float(t.user_attrs.get("heartbeat", owner["started"])) > STALE_S


def _fail_orphans(study: optuna.Study, store: FileSystemArtifactStore | None = None) -> int:
    """Mark trials left running by a process that died as interrupted, so they run again
    (their uploads removed from ``store``); return how many."""
    n, host = 0, socket.gethostname()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if _orphaned(t, host):
            reason = "interrupted: the process running it stopped before it finished"
            _fail_interrupted(study, t._trial_id, t.number, reason, requeue=True, store=store)
            n += 1
    return n


def _fail_interrupted(
    study: optuna.Study,
    trial_id: int,
    number: int,
    reason: str,
    *,
    requeue: bool,
    store: FileSystemArtifactStore | None = None,
) -> None:
    """Store a trial whose process died as failed; with ``requeue``, queue it to run again
    and remove (from ``store``) the weights and predictions it had uploaded."""
    storage = study._storage
    if storage.get_trial(trial_id).state != TrialState.RUNNING:
        return  # it was stored before its process died
    storage.set_trial_user_attr(trial_id, "fail_reason", reason)
    if requeue:
        # Interrupted trials are left out of results, and their setting is queued again.
        storage.set_trial_user_attr(trial_id, "interrupted", True)
    study.tell(number, state=TrialState.FAIL)
    trial = storage.get_trial(trial_id)
    if requeue and store is not None:
        _drop_artifacts(trial, store)
    key = trial.user_attrs.get("plan_key")
    if requeue and key is not None:
        study.enqueue_trial(trial_params(trial), user_attrs={"plan_key": key})
    _logger.warning("trial %d: %s%s", number, reason, "; it will run again" if requeue else "")


def _drop_artifacts(trial: optuna.trial.FrozenTrial, store: FileSystemArtifactStore) -> None:
    """Remove what an interrupted trial uploaded (Optuna records each upload on the trial
    as it happens): its run again uploads its own, and nothing is left unreferenced."""
    for name in trial.system_attrs:
        if name.startswith("artifacts:"):
            with contextlib.suppress(Exception):  # already gone: nothing to remove
                store.remove(name.removeprefix("artifacts:"))


def _work(p: PlannedTrial) -> float:
    """A trial's work relative to others of its study: examples times epochs.

    Parallel runs queue the biggest trials first, so that the workers finish together
    instead of one running the last big trial alone (longest-processing-time first).
    """
    work = 1.0
    for lever in ("data", "compute"):
        value = p.setting.get(lever)
        if isinstance(value, int | float) and not isinstance(value, bool):
            work *= float(value)
    return work


def _enqueue_missing(
    study: optuna.Study, url: str, planned: list[PlannedTrial], *, retry_failed: bool
) -> tuple[int, int]:
    """Put every planned trial not yet done, running or waiting in the queue (under the
    study's lock: the queue is read, then filled)."""
    with study_lock(url, study.study_name):
        return _enqueue_unlocked(study, planned, retry_failed=retry_failed)


def _enqueue_unlocked(
    study: optuna.Study, planned: list[PlannedTrial], *, retry_failed: bool
) -> tuple[int, int]:
    taken: set[str] = set()
    planned_keys = {p.key for p in planned}
    n_done = 0
    for t in study.get_trials(deepcopy=False):
        key = t.user_attrs.get("plan_key")
        if t.state in (TrialState.COMPLETE, TrialState.PRUNED) or (
            t.state == TrialState.FAIL and not t.user_attrs.get("interrupted") and not retry_failed
        ):
            # Done for this plan: an earlier data version's trials are kept, not counted.
            n_done += key in planned_keys and key not in taken
        elif t.state not in (TrialState.RUNNING, TrialState.WAITING):
            continue
        if key is not None:
            taken.add(key)
    for p in planned:
        if p.key not in taken:
            study.enqueue_trial(p.params(), user_attrs={"plan_key": p.key})
    n_todo = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
    return n_done, n_todo


def _spent(study: optuna.Study) -> tuple[float, float]:
    usd = hours = 0.0
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL)):
        usd += spend_usd(t.user_attrs)
        hours += float(t.user_attrs.get("wall_s", 0.0)) / 3600
    return usd, hours


def _budget_stop(study: optuna.Study, config: StudyConfig) -> str | None:
    usd, hours = _spent(study)
    budget = config.budget
    if budget.usd is not None and usd >= budget.usd:
        return f"budget spent: ${usd:.4f} of ${budget.usd:g}"
    if budget.hours is not None and hours >= budget.hours:
        return f"budget spent: {hours:.3f} h of {budget.hours:g} h"
    return None


@functools.cache
def _energy_meter(country_iso_code: str, gco2_per_kwh: float) -> EnergyMeter:
    from payoff.meter import EnergyMeter

    meter = EnergyMeter(country_iso_code=country_iso_code, gco2_per_kwh=gco2_per_kwh)
    meter.warm_up()  # CodeCarbon's ~2 s hardware set-up must not be charged to trial 1
    return meter


def _ready(prepared: _Prepared, artifacts: Path) -> EnergyMeter:
    """Return this process's energy meter, with CodeCarbon and torch warmed up and the
    study's starting points pretrained (once each)."""
    book = prepared.book
    energy = _energy_meter(book.country_iso_code, book.grid_gco2_per_kwh.value)
    prepared.warm_up()
    prepared.pretrain(energy, artifacts / "pretrained")
    return energy


def _run_waiting(
    study: optuna.Study,
    prepared: _Prepared,
    planned: list[PlannedTrial],
    result: Study,
    observer: RunObserver,
) -> str | None:
    """Run the queued trials; return why it stopped early (the budget), or None when done."""
    by_key = {p.key: p for p in planned}
    distributions = _distributions(study, planned)
    store = artifact_store(result.storage, result.artifacts)
    while study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        stop = _budget_stop(study, prepared.config)
        if stop is not None:
            n_left = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
            return (
                f"{stop}; {n_left} planned trials not started. Raise the budget "
                "and run again to continue."
            )
        energy = _ready(prepared, artifacts_dir(result.storage, result.artifacts))
        trial = claim(study, distributions)
        if trial is None:
            break  # other workers took the last queued trials
        _run_one(study, trial, prepared, by_key, store, energy, observer)
    return None


def claim(
    study: optuna.Study,
    distributions: Mapping[str, CategoricalDistribution],
    **owner: Any,
) -> optuna.Trial | None:
    """Take the next queued trial for this process, or return None when the queue is empty.

    The owner is written on the waiting trial *before* it turns to running, so a process
    killed at any instant leaves no running trial without an owner to check for life; of
    workers racing for one trial, the storage lets exactly one turn it to running.
    """
    storage = study._storage
    me = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(), **owner}
    with _deferred_interrupts():
        for waiting in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            try:
                storage.set_trial_user_attr(waiting._trial_id, "owner", me)
                taken = storage.set_trial_state_values(waiting._trial_id, TrialState.RUNNING)
            except optuna.exceptions.UpdateFinishedTrialError:
                taken = False  # another worker took it and finished it since the listing
            if not taken:
                continue  # another worker took it first
            storage.set_trial_user_attr(waiting._trial_id, "owner", me)  # a racer may have written
            fixed = waiting.system_attrs.get("fixed_params", {})
            # The whole setting, whatever Optuna can record of it (below).
            storage.set_trial_user_attr(waiting._trial_id, "params", fixed)
            trial = optuna.Trial(study, waiting._trial_id)
            for name, distribution in distributions.items():
                # Enqueued settings are the trial's fixed params: suggesting records them.
                # Optuna keeps one set of choices a param for the study's life, so a value
                # added to a lever later is kept only in the "params" attribute.
                if name in fixed and fixed[name] in distribution.choices:
                    trial.suggest_categorical(name, distribution.choices)
            return trial
    return None


def _run_one(
    study: optuna.Study,
    trial: optuna.Trial,
    prepared: _Prepared,
    by_key: Mapping[str, PlannedTrial],
    store: Any,
    energy: EnergyMeter,
    observer: RunObserver,
) -> None:
    """Run one trial under the meters and store its ledger, complete or failed."""
    from payoff.meter import measure

    config = prepared.config
    key = trial.user_attrs.get("plan_key", "")
    p = by_key.get(key)
    params = trial_params(study._storage.get_trial(trial._trial_id))
    setting = p.setting if p else {k: v for k, v in params.items() if k != "seed"}
    context = Trial(
        optuna_trial=trial,
        setting=setting,
        seed=int(params.get("seed", 0)),
        config=config,
        artifact_store=store,
    )
    observer.on_trial_start(trial.number, key)
    returns: Mapping[str, float] = {}
    failure = skipped = None
    try:
        with (
            _heartbeat(study, trial._trial_id),
            measure(f"trial-{trial.number}", energy=energy) as meter,
        ):
            try:
                returns = prepared.function(context)
            except TrialSkipped as err:
                skipped = str(err)
            except TrialError as err:
                failure = str(err)
            except Exception as err:  # a trial's bug is its result: stored, study goes on
                failure = f"{type(err).__name__}: {err}"
                trial.set_user_attr("fail_traceback", traceback.format_exc()[-4000:])
    except KeyboardInterrupt:
        with _deferred_interrupts():
            trial.set_user_attr("fail_reason", "interrupted by Ctrl-C")
            trial.set_user_attr("interrupted", True)
            study.tell(trial, state=TrialState.FAIL)
            _drop_artifacts(study._storage.get_trial(trial._trial_id), store)
        raise
    attrs = {
        **context.fields,
        **ledger(
            meter.reading,
            context.fields,
            hardware=prepared.hardware.entry,
            book=prepared.book,
            labels_usd_per_example=prepared.labels_usd_per_example,
            data_setting=setting.get("data"),
        ),
    }
    attrs.update({k: float(v) for k, v in returns.items()})
    if prepared.data_version:
        attrs["data_version"] = prepared.data_version
    value = _objective(returns, config)
    if skipped is not None:
        attrs["skip_reason"] = skipped
    elif failure is None and value is None:
        failure = (
            f"the trial function returned no finite {config.task.metric!r} "
            f"(it returned {sorted(returns)})"
        )
    if failure is not None:
        attrs["fail_reason"] = failure
    attrs["curve"] = json.dumps(context.curve)
    # A trial is stored whole or not at all, and the observer hears of every stored trial.
    with _deferred_interrupts():
        context.flush()
        for name, v in attrs.items():
            trial.set_user_attr(name, v)
        if skipped is not None:
            _logger.info("trial %d skipped: %s", trial.number, skipped)
            study.tell(trial, state=TrialState.PRUNED)
        elif failure is None:
            study.tell(trial, value)
        else:
            _logger.warning("trial %d failed: %s", trial.number, failure)
            study.tell(trial, state=TrialState.FAIL)
        state = "SKIPPED" if skipped else "COMPLETE" if failure is None else "FAIL"
        observer.on_trial_end(trial.number, key, state, attrs)


def _objective(returns: Mapping[str, float], config: StudyConfig) -> float | None:
    metric = config.task.metric
    for name in (f"val_{metric}", metric):
        value = returns.get(name)
        if value is not None and math.isfinite(value):
            return float(value)
    return None


def _distributions(
    study: optuna.Study, planned: list[PlannedTrial]
) -> dict[str, CategoricalDistribution]:
    """Return each param's distribution: the one the study already stores (Optuna refuses
    another), else the planned values'."""
    choices: dict[str, list[Any]] = {}
    for p in planned:
        for name, value in p.params().items():
            if value not in choices.setdefault(name, []):
                choices[name].append(value)
    out = {name: CategoricalDistribution(values) for name, values in choices.items()}
    for t in study.get_trials(deepcopy=False):
        for name, distribution in t.distributions.items():
            if isinstance(distribution, CategoricalDistribution):
                out[name] = distribution
        if t.distributions:
            break  # Optuna checks against the first trial that recorded the param
    return out


__all__ = ["RunObserver", "encode", "run"]
