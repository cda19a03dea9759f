"""Marginal returns: what each extra dollar on a lever buys, measured and forecast beyond."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

from payoff._errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from payoff.analysis._forecast import Forecast
    from payoff.analysis._lever_curve import ReturnCurve
    from payoff.analysis._value import SettingValue, ValueAnalysis
    from payoff.config import StudyConfig


@dataclass(frozen=True, slots=True)
class MarginalStep:
    """One step up a lever: what it costs more and what it returns more.

    ``gain`` is the improvement of the test metric (positive is better, also for error
    metrics); ``points`` scales it to percentage points for metrics in [0, 1].

    Attributes:
        lever: The lever.
        kind: ``measured`` (both ends are trials) or ``forecast`` (the upper end is a
            return-curve forecast, priced from fitted cost curves).
        from_value: The lever's setting (or amount) at the lower end.
        to_value: At the upper end.
        from_amount: The lower end in ``unit`` (examples, epochs, parameters), or NaN.
        to_amount: The upper end in ``unit``, or NaN.
        unit: What the amount counts.
        from_metric: The metric at the lower end (mean over seeds).
        to_metric: At the upper end (mean, or the forecast's point).
        gain: ``to - from`` as an improvement.
        gain_low: Lower end of its interval at ``level`` (NaN without repeats).
        gain_high: Upper end.
        delta_cost_usd: Extra training cost (labels + compute + energy) of the step.
        gain_per_usd: ``gain / delta_cost_usd`` (NaN when the step costs nothing more).
        points: The gain in percentage points (bounded metrics) or metric units.
        level: The interval's coverage.
        method: How the upper end and its cost were obtained.
        extrapolation: ``to_amount / largest measured`` for forecasts, 1 for measured steps.
        trials: Trials behind the measured ends.
        warnings: The forecast's warnings.
    """

    lever: str
    kind: str
    from_value: Any
    to_value: Any
    from_amount: float
    to_amount: float
    unit: str
    from_metric: float
    to_metric: float
    gain: float
    gain_low: float
    gain_high: float
    delta_cost_usd: float
    gain_per_usd: float
    points: float
    level: float
    method: str
    extrapolation: float
    trials: tuple[int, ...]
    warnings: tuple[str, ...] = ()

    @property
    def gain_per_1000_usd(self) -> float:
        """The gain per $1,000 (a linear rate: steps are not linear far beyond)."""
        return self.gain_per_usd * 1000

    def statement(self, metric: str) -> str:
        """Say the step in one plain sentence."""
        scale, unit = _scale(metric)
        pct = f"{self.level:.0%}"
        interval = (
            f", {pct} interval {self.gain_low * scale:+.2f} to {self.gain_high * scale:+.2f}"
            if math.isfinite(self.gain_low) and math.isfinite(self.gain_high)
            else ""
        )
        what = (
            f"{self.lever} {_amount(self.from_amount, self.from_value)} -> "
            f"{_amount(self.to_amount, self.to_value)}"
            + (f" {self.unit}" if math.isfinite(self.to_amount) else "")
        )
        tag = "forecast" if self.kind == "forecast" else "measured"
        return (
            f"the next ${self.delta_cost_usd:,.2f} ({what}) buys {self.gain * scale:+.2f} "
            f"{unit} of {metric} ({tag}{interval})"
        )


def _scale(metric: str) -> tuple[float, str]:
    from payoff.analysis._value import bounded

    return (100.0, "points") if bounded(metric) else (1.0, "units")


def _amount(amount: float, value: Any) -> str:
    return f"{amount:,.0f}" if math.isfinite(amount) else str(value)


@dataclass(frozen=True, slots=True)
class LeverMarginal:
    """The marginal returns along one lever, the other levers held.

    Attributes:
        lever: The lever.
        metric: The test metric column.
        held: The other levers' values along the steps.
        steps: Measured steps between neighbouring settings, cheapest first.
        next: The forecast step beyond the largest measured setting, or None for levers
            without a return curve (or too few points).
        top: The key of the largest measured setting along the lever (the forecast's base).
        note: Why there is no forecast step, when there is none.
    """

    lever: str
    metric: str
    held: dict[str, Any]
    steps: tuple[MarginalStep, ...]
    next: MarginalStep | None
    top: str | None = None
    note: str = ""


def in_order(
    along: Sequence[SettingValue], lever: str, config_values: Sequence[Any] = ()
) -> list[SettingValue]:
    """Return the settings along ``lever`` from least to most of it.

    Data settings by their training examples (``data: [300, 1000, 1.0]`` mixes counts and a
    fraction), other numbers by value, names (model sizes) in the study file's order.
    """
    values = [s.levers[lever] for s in along]
    if lever == "data" and all(math.isfinite(s.n_train) for s in along):
        return sorted(along, key=lambda s: s.n_train)
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return sorted(along, key=lambda s: s.levers[lever])
    rank = {repr(v): i for i, v in enumerate(config_values)}
    return sorted(along, key=lambda s: rank.get(repr(s.levers[lever]), len(rank)))


def _held(analysis: ValueAnalysis, lever: str) -> dict[str, Any]:
    """Return the other levers' values with the most settings of ``lever``, best at the top."""
    groups: dict[str, list[SettingValue]] = {}
    others = [k for k in analysis.levers if k != lever]
    for s in analysis.settings:
        groups.setdefault(repr([s.levers[k] for k in others]), []).append(s)
    sign = 1.0 if analysis.maximize else -1.0

    def rank(group: list[SettingValue]) -> tuple[int, float]:
        top = max(group, key=lambda s: _sort_key(s.levers[lever]))
        return len(group), sign * top.metric_mean

    best = max(groups.values(), key=rank)
    return {k: best[0].levers[k] for k in others}


def _sort_key(v: Any) -> Any:
    return (0, float(v), "") if isinstance(v, int | float) else (1, 0.0, repr(v))


def _interval(a: SettingValue, b: SettingValue, pooled: float, level: float) -> float:
    """Return the half-width of the gain's interval from the seeds' spread."""
    z = NormalDist().inv_cdf(0.5 + level / 2)
    var = 0.0
    for s in (a, b):
        sd = s.metric_std if s.n_seeds > 1 else pooled
        if not math.isfinite(sd):
            return math.nan
        var += sd**2 / s.n_seeds
    return z * math.sqrt(var)


def lever_marginal(
    analysis: ValueAnalysis,
    frame: pd.DataFrame,
    config: StudyConfig,
    lever: str,
    *,
    level: float = 0.9,
    step: float = 2.0,
) -> LeverMarginal:
    """Return the marginal returns along ``lever`` and, where it has a return curve, beyond.

    Args:
        analysis: The study's priced settings.
        frame: The trials frame.
        config: The study file.
        lever: A varied lever.
        level: Coverage of the intervals.
        step: The forecast step multiplies the largest measured amount by this.

    Raises:
        ConfigError: the lever is not varied.
    """
    from payoff.analysis._lever_curve import LEVER_AXES, return_curve

    if lever not in analysis.levers:
        raise ConfigError(
            f"lever {lever!r} is not varied; varied: {', '.join(analysis.levers) or 'none'}."
        )
    if step <= 1:
        raise ConfigError(f"step must be > 1, got {step!r}.")
    sign = 1.0 if analysis.maximize else -1.0
    curve: ReturnCurve | None = None
    note = ""
    if lever in LEVER_AXES:
        try:
            curve = return_curve(frame, config, lever)
        except ConfigError as err:
            note = str(err)
    else:
        note = f"{lever!r} has no quantity to forecast along (only data, compute and model do)"
    held = dict(curve.held) if curve is not None else _held(analysis, lever)
    along = [
        s for s in analysis.settings if all(_same(s.levers.get(k), v) for k, v in held.items())
    ]
    ordered = in_order(along, lever, config.lever_values().get(lever, []))
    amount_col = LEVER_AXES.get(lever, ("", ""))[0]
    unit = LEVER_AXES.get(lever, ("", "setting"))[1]
    steps = []
    for a, b in zip(ordered, ordered[1:], strict=False):
        gain = sign * (b.metric_mean - a.metric_mean)
        half = _interval(a, b, analysis.seed_std, level)
        dcost = b.tco.training_usd - a.tco.training_usd
        steps.append(
            MarginalStep(
                lever=lever,
                kind="measured",
                from_value=a.levers[lever],
                to_value=b.levers[lever],
                from_amount=_amount_of(a, amount_col),
                to_amount=_amount_of(b, amount_col),
                unit=unit,
                from_metric=a.metric_mean,
                to_metric=b.metric_mean,
                gain=gain,
                gain_low=gain - half,
                gain_high=gain + half,
                delta_cost_usd=dcost,
                gain_per_usd=gain / dcost if dcost > 0 else math.nan,
                points=gain * _scale(analysis.metric)[0],
                level=level,
                method=(
                    f"measured: mean of {a.n_seeds} and {b.n_seeds} seeds; interval from the "
                    "seeds' spread (normal approximation)"
                ),
                extrapolation=1.0,
                trials=a.trials + b.trials,
            )
        )
    nxt = None
    if curve is not None:
        nxt, why = _forecast_step(analysis, curve, config, level=level, step=step)
        note = note or why
    top = ordered[-1].key if ordered else None
    return LeverMarginal(lever, analysis.metric, held, tuple(steps), nxt, top, note)


def _same(a: Any, b: Any) -> bool:
    return bool(a == b) or repr(a) == repr(b)


def _amount_of(s: SettingValue, column: str) -> float:
    if column == "n_train":
        return s.n_train
    if column and column in s.levers:
        try:
            return float(s.levers[column])
        except (TypeError, ValueError):
            return math.nan
    return math.nan


def forecast_point(
    curve: ReturnCurve, config: StudyConfig, *, to: float, level: float
) -> tuple[Forecast, float, float, str]:
    """Return the forecast at ``to``, the extra training cost from the largest measured
    amount to ``to``, the total training cost at ``to``, and how that cost was obtained."""
    from payoff.analysis._lever_curve import cost_at, forecast_lever
    from payoff.prices import load_price_book
    from payoff.study._ledger import labels_usd_per_example

    price = labels_usd_per_example(config, load_price_book(config.prices))
    result = forecast_lever(curve, to=to, level=level, labels_usd_per_example=price)
    last = max(curve.xs)
    here = cost_at(curve, last, labels_usd_per_example=price)["cost_usd_total"].value
    there = result.costs["cost_usd_total"]
    parts = [
        f"{name.removeprefix('cost_usd_')}: {c.method}"
        for name, c in result.costs.items()
        if name.startswith("cost_usd_") and name not in ("cost_usd_total", "cost_usd_labels_new")
    ]
    return result.forecast, there.value - here, there.value, "; ".join(parts)


def _forecast_step(
    analysis: ValueAnalysis,
    curve: ReturnCurve,
    config: StudyConfig,
    *,
    level: float,
    step: float,
) -> tuple[MarginalStep | None, str]:
    if len(curve.points) < 2:
        return None, f"only {len(curve.points)} measured setting of {curve.lever}: no curve"
    sign = 1.0 if analysis.maximize else -1.0
    last = curve.points[-1]
    to = last.x * step
    try:
        f, dcost, _, cost_method = forecast_point(curve, config, to=to, level=level)
    except ConfigError as err:
        return None, str(err)
    if sign > 0:
        low, high = f.low - last.mean, f.high - last.mean
    else:
        low, high = last.mean - f.high, last.mean - f.low
    gain = sign * (f.point - last.mean)
    return (
        MarginalStep(
            lever=curve.lever,
            kind="forecast",
            from_value=last.x,
            to_value=to,
            from_amount=last.x,
            to_amount=to,
            unit=curve.unit,
            from_metric=last.mean,
            to_metric=f.point,
            gain=gain,
            gain_low=low,
            gain_high=high,
            delta_cost_usd=dcost,
            gain_per_usd=gain / dcost if dcost > 0 else math.nan,
            points=gain * _scale(analysis.metric)[0],
            level=level,
            method=f"forecast: {f.method}; cost {cost_method}",
            extrapolation=f.extrapolation,
            trials=(),
            warnings=f.warnings,
        ),
        "",
    )


def marginal_returns(
    analysis: ValueAnalysis,
    frame: pd.DataFrame,
    config: StudyConfig,
    *,
    level: float = 0.9,
    step: float = 2.0,
) -> tuple[LeverMarginal, ...]:
    """Return the marginal returns along every varied lever (see :func:`lever_marginal`)."""
    return tuple(
        lever_marginal(analysis, frame, config, lever, level=level, step=step)
        for lever in analysis.levers
    )
