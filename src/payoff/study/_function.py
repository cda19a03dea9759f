"""Your own training code as a payoff trial: metered and stored like a built-in one."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from payoff.config import config_from_dict

if TYPE_CHECKING:
    from payoff.study._runner import RunObserver
    from payoff.study._study import Study
    from payoff.study._trial import Trial


class TrialFunction:
    """A user function ``fn(trial) -> {metric: value}`` that payoff runs as trials."""

    def __init__(self, fn: Callable[[Trial], Mapping[str, float]]) -> None:
        functools.update_wrapper(self, fn)
        self.function = fn

    def __call__(self, trial: Trial) -> Mapping[str, float]:
        return self.function(trial)

    def run(
        self,
        *,
        study: str,
        levers: Mapping[str, Sequence[Any]],
        metric: str,
        direction: str | None = None,
        seeds: int = 1,
        storage: str | Path | None = None,
        observer: RunObserver | None = None,
        **settings: Any,
    ) -> Study:
        """Run (or resume) a study of this function over ``levers``.

        Further keyword arguments are study-file sections (``budget``, ``hardware``,
        ``labels``, ``prices``, ``value``, ``design``, ``n_trials``).

        Raises:
            ConfigError: an argument breaks the study schema.
        """
        from payoff.study._runner import run

        task: dict[str, Any] = {
            "function": f"{self.function.__module__}:{self.function.__qualname__}",
            "metric": metric,
        }
        if direction is not None:
            task["direction"] = direction
        config = config_from_dict(
            {
                "study": study,
                "task": task,
                "levers": {k: list(v) for k, v in levers.items()},
                "seeds": seeds,
                **settings,
            },
            source=f"{self.function.__qualname__}.run",
        )
        return run(config, storage=storage, function=self.function, observer=observer)


def trial_function(fn: Callable[[Trial], Mapping[str, float]]) -> TrialFunction:
    """Wrap ``fn(trial)`` so payoff meters and stores it like a built-in trial.

    Example:
        >>> @payoff.trial_function
        ... def train(trial):
        ...     model = LogisticRegression(C=trial.lever("C")).fit(X, y)
        ...     return {"accuracy": model.score(X_val, y_val)}
        >>> study = train.run(study="lr", levers={"C": [0.1, 1.0]}, metric="accuracy")
    """
    return TrialFunction(fn)
