"""Return and cost curves of a study along one lever, and what a larger setting would bring."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.optimize import nnls

from payoff._errors import ConfigError
from payoff.analysis._words import fmt_usd

if TYPE_CHECKING:
    import pandas as pd

    from payoff.analysis._forecast import Forecast, Inverse
    from payoff.config import StudyConfig

# The quantity each lever buys, as measured on the trial: (column, unit).
LEVER_AXES: dict[str, tuple[str, str]] = {
    "data": ("n_train", "training examples"),
    "compute": ("compute", "epochs"),
    "model": ("n_params", "parameters"),
}
COST_CURVE_FIELDS = (
    "wall_s",
    "flops",
    "energy_kwh",
    "co2_kg",
    "cost_usd_compute",
    "cost_usd_energy",
)
_BOUNDED = {"accuracy", "f1_macro", "precision_macro", "recall_macro", "roc_auc"}


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """The metric at one setting of the lever, over its seeds."""

    x: float
    mean: float
    std: float
    n_seeds: int


@dataclass(frozen=True, slots=True)
class ReturnCurve:
    """A metric against one lever, the other levers held at ``held``."""

    lever: str
    unit: str
    metric: str
    held: dict[str, Any]
    points: tuple[CurvePoint, ...]
    xs: tuple[float, ...]
    ys: tuple[float, ...]
    costs: tuple[dict[str, float], ...]


@dataclass(frozen=True, slots=True)
class CostEstimate:
    """A cost at a lever setting: measured there, or estimated from a fitted cost curve."""

    value: float
    method: str


@dataclass(frozen=True, slots=True)
class LeverForecast:
    """What the lever at ``at`` would return (with an interval) and cost."""

    curve: ReturnCurve
    at: float
    forecast: Forecast
    costs: dict[str, CostEstimate]


@dataclass(frozen=True, slots=True)
class LeverTarget:
    """How much of the lever a target needs, and its price."""

    curve: ReturnCurve
    target: float
    inverse: Inverse
    costs: dict[str, CostEstimate]


def return_curve(
    frame: pd.DataFrame,
    config: StudyConfig,
    lever: str,
    *,
    metric: str | None = None,
    held: Mapping[str, Any] | None = None,
) -> ReturnCurve:
    """Return the test metric against ``lever``, the other levers at ``held`` (default: their
    best-covered setting).

    Raises:
        ConfigError: the lever is not quantitative or not varied, or too few trials completed.
    """
    if lever not in LEVER_AXES:
        raise ConfigError(
            f"lever {lever!r} has no return curve; choose one of {', '.join(LEVER_AXES)}."
        )
    varied = config.lever_values()
    if lever not in varied and lever != "data":
        raise ConfigError(
            f"the study does not vary {lever!r} (it varies {', '.join(varied) or 'nothing'}); "
            "a return curve needs several settings of the lever."
        )
    metric = metric or config.task.metric or "accuracy"
    column, unit = LEVER_AXES[lever]
    y_col = f"test_{metric}" if f"test_{metric}" in frame.columns else metric
    done = frame[frame["state"] == "COMPLETE"] if "state" in frame.columns else frame
    if y_col not in done.columns:
        recorded = sorted(c.removeprefix("test_") for c in done.columns if c.startswith("test_"))
        raise ConfigError(
            f"the study records no metric {metric!r}; it records: "
            f"{', '.join(recorded) or 'none yet'}."
        )
    if done.empty or column not in done.columns:
        raise ConfigError(f"no completed trials with {column!r} to draw a {lever} curve.")
    if done[column].nunique() < 2:
        raise ConfigError(
            f"a return curve needs at least 2 settings of {lever!r}; the study has completed "
            f"{len(done)} trial(s) at {done[column].nunique()} setting(s). Run more settings "
            f"of {lever!r} first."
        )
    others = [k for k in varied if k != lever and k in done.columns]
    maximize = _maximize(metric)
    best: tuple[Any, ...] | None = None
    best_rank: tuple[float, float] = (-math.inf, -math.inf)
    groups = done.groupby(others, dropna=False) if others else [((), done)]
    for key, group in groups:
        top = group[group[column] == group[column].max()][y_col].mean()
        rank = (group[column].nunique(), top if maximize else -top)
        if rank > best_rank:
            best, best_rank = (key if isinstance(key, tuple) else (key,)), rank
    assert best is not None
    held = (
        {k: v for k, v in held.items() if k in others}
        if held is not None
        else dict(zip(others, best, strict=True))
    )
    rows = done
    for name, value in held.items():
        rows = rows[[same_value(v, value) for v in rows[name]]]
    if rows[column].nunique() < 2:
        at = ", ".join(f"{k}={v}" for k, v in held.items())
        raise ConfigError(
            f"a return curve of {lever!r} at {at} needs at least 2 measured settings of it "
            f"there; the study has {rows[column].nunique()}."
        )
    points = tuple(
        CurvePoint(float(x), float(g[y_col].mean()), float(g[y_col].std(ddof=0)), len(g))
        for x, g in rows.groupby(column)
    )
    costs = tuple(
        {f: float(r[f]) for f in COST_CURVE_FIELDS if f in r} for _, r in rows.iterrows()
    )
    return ReturnCurve(
        lever=lever,
        unit=unit,
        metric=y_col,
        held=held,
        points=points,
        xs=tuple(float(x) for x in rows[column]),
        ys=tuple(float(y) for y in rows[y_col]),
        costs=costs,
    )


def same_value(a: Any, b: Any) -> bool:
    """Return whether two lever values are the same (NumPy scalars, lists and all)."""
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return repr(a) == repr(b)


def _maximize(metric: str) -> bool:
    from payoff.returns import METRICS

    name = metric.removeprefix("test_").removeprefix("val_")
    return METRICS[name].direction == "maximize" if name in METRICS else True


def _bounds(metric: str) -> tuple[float, float] | None:
    return (0.0, 1.0) if metric.removeprefix("test_") in _BOUNDED else None


def cost_at(
    curve: ReturnCurve, x: float, *, labels_usd_per_example: float
) -> dict[str, CostEstimate]:
    """Return each cost at lever setting ``x``: measured if ``x`` was run, else a log-log fit.

    Labels of the data lever are priced exactly (examples x price); other costs follow a
    non-negative linear fit ``cost = fixed + per_unit x`` to the curve's trials, labelled as
    an estimate.
    """
    xs = np.asarray(curve.xs, dtype=float)
    out: dict[str, CostEstimate] = {}
    for field in COST_CURVE_FIELDS:
        ys = np.asarray([c.get(field, math.nan) for c in curve.costs], dtype=float)
        ok = np.isfinite(ys) & (ys > 0)
        if ok.sum() == 0:
            continue
        at_x = ys[ok & np.isclose(xs, x)]
        if at_x.size:
            out[field] = CostEstimate(float(at_x.mean()), f"measured (mean of {at_x.size} trials)")
        elif np.unique(xs[ok]).size >= 2:
            # Training work grows linearly in examples, epochs and parameters, on top of a
            # fixed cost per trial; a power law fitted to small trials under-prices big ones.
            (fixed, per_unit), _ = nnls(np.column_stack([np.ones(ok.sum()), xs[ok]]), ys[ok])
            say = fmt_usd if field.startswith("cost_usd_") else (lambda v: f"{v:.3g}")
            out[field] = CostEstimate(
                float(fixed + per_unit * x),
                f"estimate: linear fit to {int(ok.sum())} trials "
                f"({say(fixed)} + {say(per_unit)} per {curve.unit.removesuffix('s')})",
            )
    if curve.lever == "data":
        out["cost_usd_labels"] = CostEstimate(
            x * labels_usd_per_example, f"{x:,.0f} examples x ${labels_usd_per_example:g}"
        )
        # What a team pays to get there: only the examples beyond those the study already
        # trained on (recommend prices its steps the same way); the total stands beside it.
        owned = max(curve.xs) if curve.xs else 0.0
        new = max(0.0, x - owned)
        out["cost_usd_labels_new"] = CostEstimate(
            new * labels_usd_per_example,
            f"{new:,.0f} new examples beyond the {owned:,.0f} already labelled x "
            f"${labels_usd_per_example:g}",
        )
    total = sum(
        out[f].value
        for f in ("cost_usd_compute", "cost_usd_energy", "cost_usd_labels")
        if f in out
    )
    out["cost_usd_total"] = CostEstimate(total, "sum of compute, energy and labels")
    return out


def learns_from_lcdb(curve: ReturnCurve) -> bool:
    """Whether forecasts of ``curve`` take the correction learnt on LCDB, whose curves are
    accuracy against training examples: the data lever only."""
    return curve.lever == "data"


def forecast_lever(
    curve: ReturnCurve, *, to: float, level: float, labels_usd_per_example: float
) -> LeverForecast:
    """Forecast the curve's metric at lever setting ``to``, priced."""
    from payoff.analysis._forecast import forecast_curve

    if not to > 0:
        raise ConfigError(f"--to must be a positive amount of {curve.unit}, got {to!r}.")
    forecast = forecast_curve(
        curve.xs,
        curve.ys,
        to,
        level=level,
        higher_is_better=_maximize(curve.metric),
        bounds=_bounds(curve.metric),
        correction=learns_from_lcdb(curve),
    )
    return LeverForecast(
        curve, to, forecast, cost_at(curve, to, labels_usd_per_example=labels_usd_per_example)
    )


def target_lever(
    curve: ReturnCurve, *, target: float, level: float, labels_usd_per_example: float
) -> LeverTarget:
    """Return how much of the lever reaches ``target``, with an interval and its price."""
    from payoff.analysis._forecast import required_size

    inverse = required_size(
        curve.xs,
        curve.ys,
        target,
        level=level,
        higher_is_better=_maximize(curve.metric),
        bounds=_bounds(curve.metric),
        correction=learns_from_lcdb(curve),
    )
    costs = (
        cost_at(curve, inverse.point, labels_usd_per_example=labels_usd_per_example)
        if inverse.reachable and math.isfinite(inverse.point)
        else {}
    )
    return LeverTarget(curve, target, inverse, costs)


def parse_target(text: str | Mapping[str, float]) -> tuple[str, float]:
    """Parse ``accuracy=0.97`` (or ``{"accuracy": 0.97}``) into its metric and value.

    Raises:
        ConfigError: not of the form METRIC=VALUE.
    """
    if isinstance(text, Mapping):
        if len(text) != 1:
            raise ConfigError(f"give one target metric, got {dict(text)!r}.")
        ((name, value),) = text.items()
        return str(name), float(value)
    name, _, value = text.partition("=")
    try:
        return name.strip(), float(value)
    except ValueError:
        pass
    raise ConfigError(f"--target must look like accuracy=0.97, got {text!r}.")
