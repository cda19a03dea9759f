"""What every lever has in common: apply a setting to a run plan, and price it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from payoff.tasks import Task


@dataclass(frozen=True, slots=True)
class RunPlan:
    """Everything one built-in trial needs to know to train, after the levers applied."""

    n_train: int
    model_size: str | tuple[int, ...]
    epochs: int
    optimizer: str
    lr: float
    batch_size: int
    weight_decay: float
    dropout: float
    patience: int | None


@dataclass(frozen=True, slots=True)
class LeverPrices:
    """The prices a lever may need to cost its setting."""

    labels_usd_per_example: float


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
