"""The pilot design: a geometric ladder of cheap data settings, refitted after every rung.

A pilot answers one question — how much data reaches a target, or what the metric would be
at a given amount of data — from small, cheap trials, and stops as soon as the forecast is
sure enough, so a team learns whether to pay for the full grid before paying for it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from payoff.config import StudyConfig
from payoff.study._design import PlannedTrial, encode

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True, slots=True)
class PilotAnswer:
    """The pilot's answer to one question, with how sure it is."""

    question: str
    sure: bool
    point: float
    low: float
    high: float
    reachable: bool = True
    message: str = ""
    plan: float = math.nan


@dataclass(frozen=True, slots=True)
class PilotReport:
    """What the pilot ran, why it stopped, what it answers and what it spent."""

    n_rungs: int
    largest_n_train: int
    stop_reason: str
    answers: list[PilotAnswer]
    spent_usd: float
    spent_hours: float
    grid_trials: int
    grid_cost_usd_estimate: float
    grid_hours_estimate: float
    notes: list[str] = field(default_factory=list)
    spent_labels_usd: float = 0.0
    level: float = 0.9
    grid_labels_usd_estimate: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready data."""
        return asdict(self)


def ladder(config: StudyConfig, n_available: int) -> list[list[PlannedTrial]]:
    """Return the pilot's rungs: data settings growing by ``factor``, each with every seed.

    Settings are fractions of the training set when ``start`` <= 1, else counts; the ladder
    stops at ``max_fraction`` of the data the question is about.
    """
    pilot = config.pilot
    seeds = pilot.seeds or config.seeds
    fixed = {k: v[-1] for k, v in config.lever_values().items() if k != "data"}
    top = n_available * pilot.max_fraction
    if pilot.forecast_at is not None and not pilot.target and not config.target:
        asked = pilot.forecast_at * n_available if pilot.forecast_at <= 1 else pilot.forecast_at
        top = min(asked, n_available) * pilot.max_fraction
    value = pilot.start
    rungs: list[list[PlannedTrial]] = []
    while True:
        n = value * n_available if value <= 1 else value
        if n > top and rungs:
            break
        setting = {"data": round(value, 6), **fixed}
        rungs.append(
            [
                PlannedTrial(
                    key="|".join(
                        [f"{k}={encode(k, v)}" for k, v in setting.items()] + [f"seed={s}"]
                    ),
                    setting=setting,
                    seed=s,
                )
                for s in range(seeds)
            ]
        )
        value *= pilot.factor
    return rungs


def decide(frame: pd.DataFrame, config: StudyConfig, n_available: int) -> list[PilotAnswer]:
    """Refit the return curve and answer each question, saying whether it is sure enough."""
    from payoff.analysis._lever_curve import forecast_lever, return_curve, target_lever

    pilot = config.pilot
    curve = return_curve(frame, config, "data")
    enough = len(curve.points) >= pilot.min_rungs
    answers = []
    targets = pilot.target or config.target
    for metric, values in targets.items():
        for value in values if isinstance(values, list) else [values]:
            metric_curve = return_curve(frame, config, "data", metric=metric)
            inv = target_lever(
                metric_curve, target=value, level=pilot.level, labels_usd_per_example=0.0
            ).inverse
            # The figure to plan by: enough data to reach the target with 75% probability
            # (the far end of the 50% interval); the median alone under-collects.
            plan = target_lever(
                metric_curve, target=value, level=0.5, labels_usd_per_example=0.0
            ).inverse.high
            meets = [_meets(p.mean, value, metric) for p in metric_curve.points]
            # Reached on measured data only if every rung from some size up meets the target:
            # one lucky small rung followed by misses is noise, not an answer.
            held = [i for i in range(len(meets)) if all(meets[i:])]
            if held:
                reached = metric_curve.points[held[0]].x
                point = min(inv.point, reached) if inv.reachable else reached
                # Met at two or more rungs in a row from there up: the answer is at most that size.
                sure = enough and (
                    len(meets) - held[0] >= 2
                    or (inv.reachable and inv.high <= pilot.size_ratio * inv.low)
                )
                answers.append(
                    PilotAnswer(
                        f"{metric}={value:g}",
                        sure,
                        point,
                        _at_most(inv.low, point),
                        _at_most(inv.high, reached),
                        True,
                        plan=max(point, _at_most(plan, reached)),
                    )
                )
                continue
            sure_out = not inv.reachable and _beyond(inv.ceiling_high, value, metric)
            sure_in = inv.reachable and inv.high <= pilot.size_ratio * inv.low
            answers.append(
                PilotAnswer(
                    f"{metric}={value:g}",
                    enough and (sure_out or sure_in),
                    inv.point,
                    inv.low,
                    inv.high,
                    inv.reachable,
                    inv.message,
                    plan=plan,
                )
            )
    if pilot.forecast_at is not None:
        at = pilot.forecast_at * n_available if pilot.forecast_at <= 1 else pilot.forecast_at
        f = forecast_lever(curve, to=at, level=pilot.level, labels_usd_per_example=0.0).forecast
        answers.append(
            PilotAnswer(
                f"{curve.metric} at {at:,.0f} examples",
                enough and f.high - f.low <= pilot.tolerance,
                f.point,
                f.low,
                f.high,
            )
        )
    return answers


def _at_most(x: float, bound: float) -> float:
    """``x`` capped at ``bound``; ``bound`` when ``x`` is not a number."""
    return bound if math.isnan(x) else min(x, bound)


def _meets(score: float, target: float, metric: str) -> bool:
    from payoff.analysis._lever_curve import _maximize

    return score >= target if _maximize(metric) else score <= target


def _beyond(ceiling_bound: float, target: float, metric: str) -> bool:
    """Whether the ceiling's far bound still falls short of the target (sure out of reach)."""
    from payoff.analysis._lever_curve import _maximize

    if not math.isfinite(ceiling_bound):
        return False
    return ceiling_bound < target if _maximize(metric) else ceiling_bound > target


def grid_estimate(
    frame: pd.DataFrame, config: StudyConfig, n_available: int
) -> tuple[int, float, float, list[str]]:
    """Estimate what the full grid of the study's levers would cost, from the pilot's trials.

    Each grid trial's time and compute dollars follow the pilot's cost curve in the number
    of examples (a linear fit with a fixed cost per trial), scaled by its epochs over the
    pilot's.

    Returns:
        The number of grid trials, their estimated dollars (compute + energy) and hours,
        and notes on what the estimate leaves out.
    """
    from payoff.analysis._lever_curve import cost_at, return_curve
    from payoff.levers import n_examples
    from payoff.study._design import plan_trials

    grid = plan_trials(config.model_copy(update={"design": "grid"}))
    curve = return_curve(frame, config, "data")
    pilot_epochs = {k: v[-1] for k, v in config.lever_values().items()}.get("compute")
    usd = seconds = 0.0
    notes = ["estimate: the pilot's cost curve (linear in examples) x epochs ratio"]
    if "model" in config.lever_values():
        notes.append("model sizes other than the pilot's are priced as the pilot's size")
    for planned in grid:
        n = n_examples(float(planned.setting.get("data", 1.0)), n_available)
        costs = cost_at(curve, n, labels_usd_per_example=0.0)
        scale = 1.0
        if pilot_epochs and "compute" in planned.setting:
            scale = float(planned.setting["compute"]) / float(pilot_epochs)
        seconds += costs["wall_s"].value * scale if "wall_s" in costs else math.nan
        usd += (costs["cost_usd_total"].value) * scale
    return len(grid), usd, seconds / 3600, notes
