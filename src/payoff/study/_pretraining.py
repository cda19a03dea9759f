"""A study's pretrained starting points: made once before any trial, each reusing trial
charged an equal share, so the ledger shows the whole and the parts."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from payoff._errors import ConfigError
from payoff.levers import model_size

if TYPE_CHECKING:
    import torch

    from payoff.config import StudyConfig
    from payoff.levers import RunPlan
    from payoff.meter import EnergyMeter
    from payoff.prices import HardwarePrice, PriceBook
    from payoff.study._design import PlannedTrial
    from payoff.tasks import PretrainCost, PretrainedEncoder, Task


@dataclass(frozen=True, slots=True)
class StartingPoint:
    """A pretrained starting point and its price, whole and per reusing trial."""

    encoder: PretrainedEncoder | None  # None: a public encoder (text: MiniLM)
    cost: PretrainCost
    n_trials: int
    usd_total: float

    def fields(self) -> dict[str, Any]:
        """Return what a reusing trial records in its ledger."""
        return {
            "pretraining_source": self.cost.source,
            "pretraining_method": self.cost.method,
            "pretraining_usd_total": self.usd_total,
            "pretraining_wall_s_total": self.cost.wall_s,
            "pretraining_trials": self.n_trials,
            "pretraining_reused": self.cost.reused,
            "cost_usd_pretraining": self.usd_total / self.n_trials,
        }


def size_key(size: Any) -> str:
    """Return a model size as a key: a preset name, or widths joined by x."""
    s = model_size(size)
    return s if isinstance(s, str) else "x".join(map(str, s))


def uses_pretraining(config: StudyConfig) -> bool:
    """Return whether some planned trial starts from a pretrained network."""
    return any(v != "scratch" for v in config.levers.pretraining or ())


def check_pretraining(config: StudyConfig, task: Task) -> None:
    """Say, before anything runs, when the pretraining lever cannot apply to the task.

    Raises:
        ConfigError: no source to pretrain on, a linear model, or a mode the task lacks.
    """
    modes = config.levers.pretraining or ()
    if task.modality == "text":
        return
    if "finetune-all" in modes:
        raise ConfigError(
            "levers.pretraining: finetune-all applies to text encoders; an image or signal "
            "encoder's finetune already trains every layer. Use finetune."
        )
    if not uses_pretraining(config):
        return
    if config.task.pretrain_on is None:
        raise ConfigError(
            f"levers.pretraining: frozen and finetune start from an encoder payoff pretrains "
            f"on a related source task; name it in task.pretrain_on (e.g. "
            f"'sklearn:digits:classes=0-4' for 'sklearn:digits:classes=5-9'). "
            f"{config.task.dataset} is a {task.modality} task."
        )
    if config.task.model == "linear":
        raise ConfigError(
            "levers.pretraining: a linear model has no body to pretrain; use model: mlp or cnn."
        )


def prepare_pretraining(
    config: StudyConfig,
    task: Task,
    planned: list[PlannedTrial],
    *,
    book: PriceBook,
    hardware: HardwarePrice,
    energy: EnergyMeter,
    cache_dir: Path,
) -> dict[str, StartingPoint]:
    """Make (or load from the cache) every starting point the planned trials reuse.

    Returns the starting points by model size. Pretraining is metered here, outside any
    trial, and priced like a trial: compute time at the hardware's $/hour plus energy.
    """
    from payoff.tasks import pretrain_encoder, public_encoder_cost

    reusing = [p for p in planned if p.setting.get("pretraining", "scratch") != "scratch"]
    by_size: dict[str, int] = {}
    for p in reusing:
        key = size_key(p.setting.get("model", config.train.model))
        by_size[key] = by_size.get(key, 0) + 1
    points: dict[str, StartingPoint] = {}
    for key, n in by_size.items():
        if task.modality == "text":
            cost = public_encoder_cost()
            points[key] = StartingPoint(None, cost, n, 0.0)
            continue
        assert config.task.pretrain_on is not None  # checked before anything ran
        encoder = pretrain_encoder(
            config.task.pretrain_on,
            config.task.model,
            model_size(key),
            seed=config.task.split_seed,
            cache_dir=cache_dir,
            n_features=task.n_features,
            energy=energy,
        )
        cost = encoder.cost
        energy_usd = cost.energy_kwh * book.pue.value * book.electricity_usd_per_kwh.value
        usd = hardware.usd_per_hour.value * cost.wall_s / 3600 + (
            energy_usd if math.isfinite(energy_usd) else 0.0
        )
        points[key] = StartingPoint(encoder, cost, n, usd)
    return points


def model_builder(
    task: Task, plan: RunPlan, family: str, points: Mapping[str, StartingPoint]
) -> Callable[[], torch.nn.Module] | None:
    """Return how to build the trial's untrained model, or None for ``build_model``'s."""
    from payoff.tasks import build_text_model, build_transfer_model

    n_outputs = task.n_classes if task.kind == "classification" else 1
    if task.modality == "text":
        text = task.notes["text"]
        size = plan.model_size if isinstance(plan.model_size, str) else "medium"
        return lambda: build_text_model(
            plan.pretraining,
            size,
            n_outputs=n_outputs,
            dropout=plan.dropout,
            vocab_size=text["vocab_size"],
            pad_id=text["pad_id"],
        )
    if plan.pretraining == "scratch":
        return None
    encoder = points[size_key(plan.model_size)].encoder
    assert encoder is not None
    return lambda: build_transfer_model(
        encoder,
        plan.pretraining,
        n_outputs=n_outputs,
        n_features=task.n_features,
        dropout=plan.dropout,
    )
