"""A stored study: its config, its trials, and the ledger as a DataFrame."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import optuna
from optuna.trial import TrialState

from payoff._errors import ConfigError
from payoff.study._ledger import COST_FIELDS, METHOD_FIELDS, RETURN_FIELDS

if TYPE_CHECKING:
    from collections.abc import Mapping

    import pandas as pd

    from payoff.analysis._lever_curve import LeverForecast, LeverTarget
    from payoff.analysis._recommend import Recommendation
    from payoff.config import StudyConfig
    from payoff.study._record import StudyRecord

_HIDDEN = {"owner", "curve", "fail_traceback", "plan_key", "interrupted", "params", "heartbeat"}


def trial_params(trial: optuna.trial.FrozenTrial) -> dict[str, Any]:
    """Return a trial's setting and seed: its Optuna params and what Optuna could not record
    (values added to a lever after the study's first trial)."""
    return {**trial.params, **trial.user_attrs.get("params", {})}


class Study:
    """A payoff study in its storage. Get one from :func:`payoff.run` or :func:`payoff.load`."""

    def __init__(
        self, optuna_study: optuna.Study, *, storage: str, artifacts: str | Path | None = None
    ) -> None:
        self.optuna = optuna_study
        self.storage = storage
        self.artifacts = artifacts

    @property
    def name(self) -> str:
        """The study's name (``study:`` in the study file)."""
        return self.optuna.study_name

    @property
    def config(self) -> StudyConfig:
        """The study file as it was last run."""
        from payoff.config import StudyConfig

        return StudyConfig.model_validate(self.optuna.user_attrs["config"])

    @property
    def n_planned(self) -> int:
        """How many trials the study's design plans."""
        return int(self.optuna.user_attrs.get("n_planned", 0))

    @property
    def pilot(self) -> dict[str, Any] | None:
        """The pilot's report (design: pilot): answers, why it stopped, spend, grid estimate."""
        return self.optuna.user_attrs.get("pilot")

    def trials(
        self, states: tuple[TrialState, ...] | None = None
    ) -> list[optuna.trial.FrozenTrial]:
        """Return the study's trials (finished ones by default), in the order they ran."""
        states = states or (TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED)
        return self.optuna.get_trials(deepcopy=False, states=states)

    def curve(self, number: int) -> list[dict[str, float]]:
        """Return a trial's per-epoch curve (epoch, train_loss, val_<metric>)."""
        trial = self.optuna.trials[number]
        return list(json.loads(trial.user_attrs.get("curve", "[]")))

    def trials_frame(
        self, *, include_failed: bool = True, all_versions: bool = False
    ) -> pd.DataFrame:
        """Return one row a trial: settings, returns, costs, and why a trial failed or skipped.

        Trials interrupted by a killed process or Ctrl-C are left out: they were run again.
        Once feedback has grown the training set, only trials on the current data version
        are returned, unless ``all_versions``.
        """
        import pandas as pd

        from payoff.study._feedback import data_version

        current = data_version(self.optuna)
        rows: list[dict[str, Any]] = []
        for t in self.trials():
            attrs = t.user_attrs
            if (
                attrs.get("interrupted")
                or (t.state != TrialState.COMPLETE and not include_failed)
                or (not all_versions and attrs.get("data_version", 0) != current)
            ):
                continue
            row: dict[str, Any] = {"number": t.number, "state": t.state.name}
            row |= trial_params(t)
            row |= {k: v for k, v in attrs.items() if k not in _HIDDEN}
            if current:  # the version each trial trained on, 0 before any feedback
                row["data_version"] = attrs.get("data_version", 0)
            rows.append(row)
        frame = pd.DataFrame(rows)
        if frame.empty:
            return frame
        lead = ["number", "state", *self.config.lever_values(), "seed"]
        returns = sorted(c for c in frame.columns if c.startswith(("val_", "test_")))
        known = [
            *lead,
            *returns,
            *RETURN_FIELDS,
            *COST_FIELDS,
            *METHOD_FIELDS,
            "fail_reason",
            "skip_reason",
        ]
        ordered = [c for c in known if c in frame.columns]
        rest = sorted(c for c in frame.columns if c not in ordered)
        return frame[ordered + rest].reset_index(drop=True)

    def record(self) -> StudyRecord:
        """Return a frozen snapshot of the study: what analysis and the report read."""
        from payoff.study._record import study_record

        return study_record(self)

    def forecast(
        self,
        lever: str,
        *,
        to: float | None = None,
        target: str | Mapping[str, float] | None = None,
        level: float = 0.9,
    ) -> LeverForecast | LeverTarget:
        """Forecast the test metric at ``to`` units of ``lever``, or what a ``target`` needs.

        Example:
            >>> study.forecast("data", to=50_000)             # Forecast with point, low, high
            >>> study.forecast("data", target="accuracy=0.97")  # how many examples, at what price

        Raises:
            ConfigError: neither or both of ``to`` and ``target``; an unknown lever or metric.
        """
        from payoff.analysis._lever_curve import (
            forecast_lever,
            parse_target,
            return_curve,
            target_lever,
        )
        from payoff.prices import load_price_book
        from payoff.study._ledger import labels_usd_per_example

        if (to is None) == (target is None):
            raise ConfigError(
                "give exactly one of `to` (a lever amount) or `target` (metric=value)."
            )
        config = self.config
        price = labels_usd_per_example(config, load_price_book(config.prices))
        if target is None:
            curve = return_curve(self.trials_frame(), config, lever)
            assert to is not None
            return forecast_lever(curve, to=float(to), level=level, labels_usd_per_example=price)
        metric, value = parse_target(target)
        curve = return_curve(self.trials_frame(), config, lever, metric=metric)
        return target_lever(curve, target=value, level=level, labels_usd_per_example=price)

    def recommend(
        self,
        *,
        target: str | Mapping[str, float] | None = None,
        budget_usd: float | None = None,
        level: float = 0.9,
        n_draws: int = 10_000,
        seed: int = 0,
    ) -> Recommendation:
        """Recommend a setting: the cheapest that meets ``target``, the best ROI within
        ``budget_usd`` (TCO over the value horizon), and the next investment worth making.

        Example:
            >>> rec = study.recommend(target={"accuracy": 0.97}, budget_usd=200)
            >>> print(rec)                      # the recommendation in plain words
            >>> rec.meets_target.key, rec.meets_target.kind   # "measured" or "forecast"

        Raises:
            ConfigError: a malformed target or budget, or no completed trial.
        """
        from payoff.analysis._recommend import recommend

        return recommend(
            self.record(),
            target=target,
            budget_usd=budget_usd,
            level=level,
            n_draws=n_draws,
            seed=seed,
        )

    def report(self, path: str | Path = "report.html") -> Path:
        """Write the self-contained HTML report to ``path`` and return it."""
        from payoff.report import write_report

        return write_report(self, path)


def load(study: str, storage: str | Path | None = None) -> Study:
    """Open a stored study by name.

    Raises:
        StudyNotFoundError: no such storage or study; the message lists what exists.
    """
    from payoff.study._storage import load_optuna_study, storage_url

    url = storage_url(storage)
    return Study(load_optuna_study(url, study), storage=url)
