"""Workers racing for queued trials on one SQLite file: each trial is taken exactly once."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from pathlib import Path

import optuna
from optuna.distributions import CategoricalDistribution

from payoff.study._runner import claim
from payoff.study._storage import open_storage

N_TRIALS = 60


def _take_all(url: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    study = optuna.load_study(study_name="race", storage=open_storage(url, create=False))
    distributions = {"x": CategoricalDistribution(list(range(N_TRIALS)))}
    taken: list[int] = []
    try:
        while (trial := claim(study, distributions)) is not None:
            taken.append(trial.number)
            study.tell(trial, 0.0)
    except Exception as err:  # a trial taken twice fails on its second tell
        out.put(repr(err))
        return
    out.put(taken)


def test_racing_workers_take_each_queued_trial_once(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'race.db'}"
    study = optuna.create_study(study_name="race", storage=open_storage(url, create=True))
    for x in range(N_TRIALS):
        study.enqueue_trial({"x": x})
    ctx = multiprocessing.get_context("fork")  # the workers payoff runs are forked too
    out = ctx.Queue()
    procs = [ctx.Process(target=_take_all, args=(url, out)) for _ in range(3)]
    for p in procs:
        p.start()
    taken = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert not [t for t in taken if isinstance(t, str)], taken
    counts = Counter(n for t in taken for n in t)
    assert len(counts) == N_TRIALS and set(counts.values()) == {1}
    assert sum(1 for t in taken if t) >= 2  # they did race
