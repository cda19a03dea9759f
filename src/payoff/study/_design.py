"""Designs: which lever settings (and seeds) a study plans to run."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from typing import Any

from payoff.config import StudyConfig
from payoff.levers import LEVERS


@dataclass(frozen=True, slots=True)
class PlannedTrial:
    """One setting and seed to run; ``key`` identifies it across resumes."""

    key: str
    setting: dict[str, Any]
    seed: int

    def params(self) -> dict[str, Any]:
        """Return the setting as Optuna params (scalars), the seed included."""
        return {**{name: encode(name, v) for name, v in self.setting.items()}, "seed": self.seed}


def encode(lever: str, value: Any) -> Any:
    """Return a lever setting as Optuna stores it."""
    return LEVERS[lever].encode(value) if lever in LEVERS else value


def plan_trials(config: StudyConfig, data_version: int = 0) -> list[PlannedTrial]:
    """Return the trials a study plans, in the order they run.

    ``grid`` runs every combination; ``random`` draws ``n_trials`` distinct combinations,
    seeded by the study name so a rerun draws the same ones. Once feedback has grown the
    training set (``data_version`` > 0), the plan is new: every setting runs again.
    """
    levers = config.lever_values()
    combos = [
        dict(zip(levers, values, strict=True)) for values in itertools.product(*levers.values())
    ]
    if config.design == "random":
        assert config.n_trials is not None  # checked by the config loader
        rng = random.Random(config.study)
        combos = rng.sample(combos, min(config.n_trials, len(combos)))
    planned = []
    for setting in combos:
        for seed in range(config.seeds):
            parts = [f"{name}={encode(name, v)}" for name, v in setting.items()] + [f"seed={seed}"]
            if data_version:
                parts.append(f"data_version={data_version}")
            planned.append(PlannedTrial(key="|".join(parts), setting=setting, seed=seed))
    return planned
