"""Run a study's queued trials as Ray tasks, each with the CPUs and GPUs it asks for.

The coordinator claims each trial from the storage queue, then hands it to a Ray task that
runs it under the meters and stores it. A task whose worker dies leaves its trial failed
with the reason, or queued again while ``executor.retries`` allows.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from payoff._errors import ConfigError
from payoff.config import StudyConfig
from payoff.study._feedback import data_version
from payoff.study._runner import RunObserver, _prepare, _Prepared
from payoff.study._storage import open_storage


@functools.lru_cache(maxsize=4)
def _prepared(config_json: str, url: str, version: int) -> _Prepared:
    # A Ray worker process runs many trials of one study: check and warm up once, not per trial.
    config = StudyConfig.model_validate(json.loads(config_json))
    study = optuna.load_study(study_name=config.study, storage=open_storage(url, create=False))
    return _prepare(config, None, study)


def _ray_trial(
    config_json: dict[str, Any], url: str, artifacts: str | None, trial_id: int
) -> dict[str, Any]:
    """Run one claimed trial on a Ray worker; return what the coordinator shows."""
    from payoff.study._design import plan_trials
    from payoff.study._runner import _ready, _run_one
    from payoff.study._storage import artifact_store, artifacts_dir

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(
        study_name=config_json["study"], storage=open_storage(url, create=False)
    )
    prepared = _prepared(json.dumps(config_json, sort_keys=True), url, data_version(study))
    config = prepared.config
    trial = optuna.trial.Trial(study, trial_id)
    energy = _ready(prepared, artifacts_dir(url, artifacts))
    seen: dict[str, Any] = {}

    class Keep(RunObserver):
        def on_trial_end(self, number: int, key: str, state: str, attrs: Any) -> None:
            seen.update(state=state, attrs={k: v for k, v in attrs.items() if k != "curve"})

    by_key = {p.key: p for p in plan_trials(config, prepared.data_version)}
    _run_one(study, trial, prepared, by_key, artifact_store(url, artifacts), energy, Keep())
    return seen


def run_ray(
    config: StudyConfig,
    *,
    study: optuna.Study,
    url: str,
    artifacts: str | Path | None,
    observer: RunObserver,
) -> str | None:
    """Run every queued trial as a Ray task; return why it stopped early, if it did."""
    try:
        import ray
    except ImportError:
        raise ConfigError("executor 'ray' needs Ray: pip install 'payoff[ray]'.") from None
    from payoff.study._design import plan_trials
    from payoff.study._runner import _budget_stop, _distributions, _fail_interrupted, claim

    ex = config.executor
    if url.startswith("sqlite:///") and ex.address not in ("local",):
        raise ConfigError(
            "a Ray cluster's workers need a storage they can all reach: use "
            "--storage postgresql://... (SQLite works with executor.address: local only)."
        )
    if not ray.is_initialized():
        if ex.address == "local":
            ray.init(
                address="local",
                include_dashboard=False,
                log_to_driver=False,
                _node_ip_address="127.0.0.1",
            )
        else:
            ray.init(address=ex.address, log_to_driver=False)
    cpus = float(ray.cluster_resources().get("CPU", 1))
    limit = ex.max_concurrent or max(1, int(cpus // ex.cpus_per_trial))
    remote = ray.remote(_ray_trial).options(
        num_cpus=ex.cpus_per_trial, num_gpus=ex.gpus_per_trial, max_retries=0
    )
    distributions = _distributions(study, plan_trials(config))
    payload = (config.model_dump(mode="json"), url, str(artifacts) if artifacts else None)
    running: dict[Any, optuna.Trial] = {}
    tries: dict[str, int] = {}
    stop = None
    while True:
        waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        stop = stop or (_budget_stop(study, config) if waiting else None)
        while waiting and not stop and len(running) < limit:
            trial = claim(study, distributions, executor="ray")
            if trial is None:
                break
            running[remote.remote(*payload, trial._trial_id)] = trial
            waiting = study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
        if not running:
            break
        (ref,), _ = ray.wait(list(running), num_returns=1)
        trial = running.pop(ref)
        try:
            seen = ray.get(ref)
            observer.on_trial_end(
                trial.number, trial.user_attrs.get("plan_key", ""), seen["state"], seen["attrs"]
            )
        except (ray.exceptions.RayError, KeyError) as err:
            key = trial.user_attrs.get("plan_key", "")
            tries[key] = tries.get(key, 0) + 1
            retry = tries[key] <= ex.retries
            reason = f"ray worker died during the trial ({type(err).__name__})"
            _fail_interrupted(study, trial._trial_id, trial.number, reason, requeue=retry)
            observer.on_trial_end(trial.number, key, "FAIL", {"fail_reason": reason})
    return stop
