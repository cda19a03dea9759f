"""Pareto fronts: the settings no other setting beats on both cost and return."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from payoff.analysis._value import SettingValue, ValueAnalysis


@dataclass(frozen=True, slots=True)
class ParetoPoint:
    """One setting on a cost-return plane: means over seeds, with their spread.

    Attributes:
        key: The setting (``data=0.5 compute=8``).
        x: Its cost (mean over seeds).
        x_std: Standard deviation of the cost over seeds.
        y: Its return (mean over seeds).
        y_std: Standard deviation of the return over seeds.
        on_front: Whether no other setting is at least as good on both and better on one.
        trials: The trials behind the point.
    """

    key: str
    x: float
    x_std: float
    y: float
    y_std: float
    on_front: bool
    trials: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class ParetoFront:
    """Every setting on one cost-return plane, and which are non-dominated.

    Attributes:
        x: The cost's name (``tco_usd``, ``training_usd``, ``latency_p50_s``, ``co2_kg``).
        x_label: A label with its unit.
        y: The return's name (the test metric column).
        maximize: Whether a higher return is better.
        points: One point per setting with finite values.
        method: Where the cost comes from (measured or estimated).
    """

    x: str
    x_label: str
    y: str
    maximize: bool
    points: tuple[ParetoPoint, ...]
    method: str

    @property
    def front(self) -> tuple[ParetoPoint, ...]:
        """The non-dominated points, cheapest first."""
        return tuple(sorted((p for p in self.points if p.on_front), key=lambda p: p.x))

    def contains(self, key: str) -> bool:
        """Return whether the setting ``key`` is on the front."""
        return any(p.key == key and p.on_front for p in self.points)


def non_dominated(
    costs: Sequence[float], returns: Sequence[float], *, maximize: bool = True
) -> np.ndarray:
    """Return a mask of the points no other point dominates (lower cost, better return).

    A point is dominated when another costs no more, returns no less, and is strictly
    better on one of the two. Points with a NaN are never on the front.
    """
    x = np.asarray(costs, dtype=float)
    y = np.asarray(returns, dtype=float) * (1.0 if maximize else -1.0)
    ok = np.isfinite(x) & np.isfinite(y)
    mask = ok.copy()
    for i in np.flatnonzero(ok):
        others = ok.copy()
        others[i] = False
        better = others & (x <= x[i]) & (y >= y[i]) & ((x < x[i]) | (y > y[i]))
        if better.any():
            mask[i] = False
    return mask


# (name, label, method) of each cost axis; values come from SettingValue.
_AXES = (
    ("tco_usd", "TCO over the horizon (USD)", "measured training costs + estimated serving"),
    ("training_usd", "training cost: labels + compute + energy (USD)", "measured"),
    ("latency_p50_s", "inference latency p50 (s)", "measured (batch 1)"),
    ("co2_kg", "CO2, training + serving (kg)", "training measured, serving estimate:tdp"),
)


def axis_value(s: SettingValue, axis: str) -> tuple[float, float]:
    """Return a setting's (mean, std) on a cost axis."""
    if axis == "tco_usd":
        return s.tco.total_usd, s.tco_std_usd
    if axis == "training_usd":
        return s.tco.training_usd, s.training_std_usd
    if axis == "latency_p50_s":
        return s.latency_p50_s, s.latency_std_s
    if axis == "co2_kg":
        return s.footprint.co2_kg, math.nan
    raise KeyError(axis)


def pareto_front(analysis: ValueAnalysis, axis: str = "tco_usd") -> ParetoFront:
    """Return the settings' front on ``axis`` (a cost) against the study's test metric.

    Raises:
        KeyError: an unknown axis (one of ``tco_usd``, ``training_usd``,
            ``latency_p50_s``, ``co2_kg``).
    """
    axes = {name: (lab, m) for name, lab, m in _AXES}
    if axis not in axes:
        raise KeyError(f"no cost axis {axis!r}; choose one of {', '.join(axes)}")
    label, method = axes[axis]
    pairs = [(s, *axis_value(s, axis)) for s in analysis.settings]
    pairs = [(s, x, sx) for s, x, sx in pairs if math.isfinite(x) and math.isfinite(s.metric_mean)]
    mask = non_dominated(
        [x for _, x, _ in pairs], [s.metric_mean for s, _, _ in pairs], maximize=analysis.maximize
    )
    points = tuple(
        ParetoPoint(s.key, x, sx, s.metric_mean, s.metric_std, bool(m), s.trials)
        for (s, x, sx), m in zip(pairs, mask, strict=True)
    )
    return ParetoFront(axis, label, analysis.metric, analysis.maximize, points, method)


def pareto_fronts(analysis: ValueAnalysis) -> tuple[ParetoFront, ...]:
    """Return the fronts on TCO, training cost, latency and CO2 against the test metric."""
    return tuple(pareto_front(analysis, name) for name, _, _ in _AXES)
