"""What every lever has in common: apply a setting to a run plan, and price it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from payoff.tasks import Task


@dataclass(frozen=True, slots=True)
class RunPlan:
    """Everything one built-in trial needs to know to train, after the levers applied."""

    n_train: int
    model_size: str | tuple[int, ...]
    epochs: int
    # The train section's defaults, so a plan built in code names only what it changes.
    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int = 64
    weight_decay: float = 0.0
    dropout: float = 0.0
    patience: int | None = 5
    precision: str = "fp32"
    augmentation: str = "none"
    label_quality: str | None = None  # a grade from the study's labels.grades; None: clean
    workers: int = 1  # data-parallel training processes
    pretraining: str = "scratch"
    compression: str = "none"


@dataclass(frozen=True, slots=True)
class LabelGradePrice:
    """A grade of labels as a trial uses it: the price of one and how often one is wrong."""

    usd_per_example: float
    error_rate: float


@dataclass(frozen=True, slots=True)
class LeverPrices:
    """The prices a lever may need to cost its setting."""

    labels_usd_per_example: float
    label_grades: Mapping[str, LabelGradePrice] = field(default_factory=dict)

    def label_usd(self, grade: str | None) -> float:
        """Return the price of one label of ``grade`` (None: the study's label price)."""
        return (
            self.labels_usd_per_example
            if grade is None
            else self.label_grades[grade].usd_per_example
        )


class Lever(ABC):
    """One dimension a team can invest in.

    Costs that grow with time (compute, energy) are metered on the trial; a lever prices
    only what it buys directly, such as labels.
    """

    name: ClassVar[str]

    def encode(self, value: Any) -> bool | int | float | str:
        """Return the setting as Optuna stores it (a scalar)."""
        return value

    @abstractmethod
    def apply(self, plan: RunPlan, value: Any, task: Task) -> RunPlan:
        """Return the plan with this lever set to ``value``."""

    def cost_usd(self, plan: RunPlan, prices: LeverPrices) -> dict[str, float]:
        """Return the money this setting costs directly, by ledger field."""
        return {}
