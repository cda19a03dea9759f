"""Risk: Monte Carlo over what is uncertain, a tornado of sensitivities, and warning flags.

The Monte Carlo draws, independently for each run of the simulation:

- every price as a multiplier, uniform in ``1 +- value.price_uncertainty`` (labels $/example,
  hardware $/hour, electricity $/kWh, engineer $/hour, a given serving price);
- every value-model input as a multiplier, uniform in ``1 +- value.value_uncertainty``
  (predictions a month, value of a correct prediction, cost of an error, engineer hours);
- the metric of the model that would be deployed: normal around the setting's mean with
  its seeds' standard deviation (the study's pooled one when it has a single seed), or,
  for a forecast, a split normal matching the forecast's interval; clipped to the
  metric's range.

A ``numpy.random.Generator`` seeded with ``seed`` makes each run reproducible.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

import numpy as np

from payoff._errors import ConfigError

if TYPE_CHECKING:
    from payoff.analysis._forecast import Forecast
    from payoff.analysis._marginal import LeverMarginal
    from payoff.analysis._value import SettingValue, ValueAnalysis
    from payoff.study import StudyRecord


@dataclass(frozen=True, slots=True)
class Uncertain:
    """One uncertain input: its base and the low/high ends of its range."""

    name: str
    label: str
    base: float
    low: float
    high: float
    unit: str
    source: str


@dataclass(frozen=True, slots=True)
class TornadoBar:
    """NPV with one input at the low and at the high end of its range, the rest at base."""

    name: str
    label: str
    low: float
    high: float
    npv_low_usd: float
    npv_high_usd: float

    @property
    def swing_usd(self) -> float:
        """How far NPV moves across the input's range."""
        return abs(self.npv_high_usd - self.npv_low_usd)


@dataclass(frozen=True, slots=True)
class RiskResult:
    """The Monte Carlo of one setting's NPV and ROI, and its tornado.

    Attributes:
        key: The setting (or the forecast) simulated.
        n_draws: Runs of the simulation.
        seed: The generator's seed: the same seed gives the same draws.
        base_npv_usd: NPV at every input's base value.
        p_loss: Probability that ROI < 0 (the setting loses money over the horizon).
        npv_p5_usd: 5th percentile of NPV.
        npv_p50_usd: Median NPV.
        npv_p95_usd: 95th percentile of NPV.
        npv_mean_usd: Mean NPV.
        roi_p5: 5th percentile of ROI.
        roi_p50: Median ROI.
        roi_p95: 95th percentile of ROI.
        inputs: The uncertain inputs and their ranges.
        tornado: One bar per input, widest swing first.
        method: How the draws were made.
        npv_usd: Every draw of NPV (for a histogram).
    """

    key: str
    n_draws: int
    seed: int
    base_npv_usd: float
    p_loss: float
    npv_p5_usd: float
    npv_p50_usd: float
    npv_p95_usd: float
    npv_mean_usd: float
    roi_p5: float
    roi_p50: float
    roi_p95: float
    inputs: tuple[Uncertain, ...]
    tornado: tuple[TornadoBar, ...]
    method: str
    npv_usd: np.ndarray = field(repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """Return the summary (no draws) as plain JSON-able values."""
        return {
            "key": self.key,
            "n_draws": self.n_draws,
            "seed": self.seed,
            "base_npv_usd": self.base_npv_usd,
            "p_loss": self.p_loss,
            "npv_p5_usd": self.npv_p5_usd,
            "npv_p50_usd": self.npv_p50_usd,
            "npv_p95_usd": self.npv_p95_usd,
            "npv_mean_usd": self.npv_mean_usd,
            "roi_p5": self.roi_p5,
            "roi_p50": self.roi_p50,
            "roi_p95": self.roi_p95,
            "tornado": [
                {
                    "input": b.label,
                    "low": b.low,
                    "high": b.high,
                    "npv_low_usd": b.npv_low_usd,
                    "npv_high_usd": b.npv_high_usd,
                }
                for b in self.tornado
            ],
            "method": self.method,
        }


@dataclass(frozen=True, slots=True)
class MetricDraw:
    """How the deployed model's metric is drawn: centre, spread below and above, bounds.

    ``low`` and ``high`` are the ends of its central interval (the tornado's range);
    ``bounds`` the metric's possible range, draws are clipped to it.
    """

    point: float
    sd_low: float
    sd_high: float
    low: float
    high: float
    source: str
    bounds: tuple[float, float] = (-math.inf, math.inf)


def metric_draw_of(
    analysis: ValueAnalysis, setting: SettingValue, *, level: float = 0.9
) -> MetricDraw:
    """Return the measured metric's distribution (seed spread; pooled with one seed)."""
    from payoff.analysis._value import bounded

    sd = setting.value_metric_std if setting.n_seeds > 1 else analysis.seed_std
    source = (
        f"seed spread of {setting.n_seeds} trials"
        if setting.n_seeds > 1
        else "the study's pooled seed spread (this setting has one seed)"
    )
    if not math.isfinite(sd):
        sd, source = 0.0, "no repeated seeds in the study: metric taken as measured"
    z = NormalDist().inv_cdf(0.5 + level / 2)
    lo, hi = (0.0, 1.0) if bounded(analysis.model.value_metric) else (-math.inf, math.inf)
    if analysis.model.kind == "regression":
        lo = max(lo, 0.0)  # an absolute error is never negative
    m = setting.value_metric_mean
    return MetricDraw(m, sd, sd, max(lo, m - z * sd), min(hi, m + z * sd), source, (lo, hi))


def metric_draw_from_forecast(forecast: Forecast, *, bounds: tuple[float, float]) -> MetricDraw:
    """Return a split normal matching a forecast's interval."""
    z = NormalDist().inv_cdf(0.5 + forecast.level / 2)
    return MetricDraw(
        forecast.point,
        max(forecast.point - forecast.low, 0.0) / z,
        max(forecast.high - forecast.point, 0.0) / z,
        max(bounds[0], forecast.low),
        min(bounds[1], forecast.high),
        f"forecast interval ({forecast.level:.0%}): {forecast.method}",
        bounds,
    )


# Multipliers drawn for each input: (name, label, kind) with kind "price" or "value".
_INPUTS = (
    ("labels", "labels $/example", "price"),
    ("hardware", "hardware $/hour (training and serving)", "price"),
    ("electricity", "electricity $/kWh", "price"),
    ("engineer_rate", "engineer $/hour", "price"),
    ("serving_price", "serving price (given)", "price"),
    ("volume", "predictions a month", "value"),
    ("usd_per_prediction", "value of a prediction", "value"),
    ("usd_per_correct", "value of a correct prediction", "value"),
    ("usd_per_error", "cost of an error", "value"),
    ("usd_per_error_unit", "cost per unit of error", "value"),
    ("engineer_hours", "engineer hours", "value"),
)


def _active(analysis: ValueAnalysis, s: SettingValue) -> list[tuple[str, str, str]]:
    """Return the inputs that matter to this setting (a zero input has no range)."""
    m = analysis.model
    given_serving = m.serving_usd_per_million is not None
    used = {
        "labels": s.tco.labels_usd > 0,
        "hardware": s.tco.compute_usd > 0 or (s.tco.serving_usd > 0 and not given_serving),
        "electricity": s.tco.energy_usd > 0,
        "engineer_rate": s.tco.people_usd > 0,
        "serving_price": given_serving and s.tco.serving_usd > 0,
        "volume": m.predictions_per_month > 0,
        "usd_per_prediction": m.usd_per_prediction > 0 and m.baseline is None,
        "usd_per_correct": m.usd_per_correct > 0 and m.kind == "classification",
        "usd_per_error": s.error_cost_usd > 0 and m.kind == "classification",
        "usd_per_error_unit": m.usd_per_error_unit > 0 and m.kind == "regression",
        "engineer_hours": s.tco.people_usd > 0,
    }
    return [i for i in _INPUTS if used[i[0]]]


def npv_roi(
    analysis: ValueAnalysis,
    s: SettingValue,
    metric: Any,
    mult: Mapping[str, Any],
    *,
    extra: Mapping[str, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return NPV and ROI of setting ``s`` at ``metric`` with inputs scaled by ``mult``.

    Arrays broadcast: pass arrays of draws to simulate, scalars for one case. ``extra``
    adds training costs (``labels``, ``compute``, ``energy``) for a forecast beyond ``s``.
    """
    from payoff.analysis._value import annuity_factor

    m = analysis.model
    extra = extra or {}

    def g(name: str) -> Any:
        return mult.get(name, 1.0)

    labels = (s.tco.labels_usd + extra.get("labels", 0.0)) * g("labels")
    compute = (s.tco.compute_usd + extra.get("compute", 0.0)) * g("hardware")
    energy = (s.tco.energy_usd + extra.get("energy", 0.0)) * g("electricity")
    rate = m.engineer_usd_per_hour * g("engineer_rate")
    hours = g("engineer_hours")
    upfront = labels + compute + energy + rate * m.engineer_hours * hours
    serving_scale = g("serving_price") if m.serving_usd_per_million is not None else g("hardware")
    volume = m.predictions_per_month * g("volume")
    running = volume * s.serving_per_prediction_usd * serving_scale + (
        rate * m.engineer_hours_per_month * hours
    )
    vpp = m.per_prediction(
        np.asarray(metric, dtype=float),
        error_cost_usd=s.error_cost_usd,
        usd_per_prediction=g("usd_per_prediction"),
        usd_per_correct=g("usd_per_correct"),
        usd_per_error=g("usd_per_error"),
        usd_per_error_unit=g("usd_per_error_unit"),
    )
    value_month = volume * vpp
    horizon = m.horizon_months
    npv = -upfront + (value_month - running) * annuity_factor(horizon, m.discount_rate)
    tco = upfront + running * horizon
    gain = value_month * horizon - tco
    with np.errstate(divide="ignore", invalid="ignore"):
        roi = np.where(tco > 0, gain / np.where(tco > 0, tco, 1.0), np.sign(gain) * np.inf)
    return np.asarray(npv, dtype=float), np.asarray(roi, dtype=float)


def _draw_metric(rng: np.random.Generator, d: MetricDraw, n: int) -> np.ndarray:
    z = rng.standard_normal(n)
    x = d.point + np.where(z < 0, z * d.sd_low, z * d.sd_high)
    return np.clip(x, d.bounds[0], d.bounds[1])


def simulate(
    analysis: ValueAnalysis,
    setting: SettingValue,
    *,
    metric: MetricDraw | None = None,
    extra: Mapping[str, float] | None = None,
    key: str | None = None,
    n_draws: int = 10_000,
    seed: int = 0,
    level: float = 0.9,
    metric_stream: int = 0,
) -> RiskResult:
    """Simulate a setting's NPV and ROI under every uncertainty; rank inputs by swing.

    Args:
        analysis: The study's priced settings.
        setting: The setting to simulate (or the base of a forecast).
        metric: The metric's distribution; default: the setting's measured spread.
        extra: Extra training costs of a forecast beyond ``setting`` (labels, compute,
            energy).
        key: A name for the result (default: the setting's key).
        n_draws: Runs of the simulation.
        seed: Seed of the generator; the same seed gives the same result.
        level: Coverage of the metric's range in the tornado.
        metric_stream: Which stream of the seed the metric's noise comes from: two settings
            simulated with one seed and different streams share every price and value draw
            (paired) while their seeds' noise stays independent.

    Raises:
        ConfigError: ``n_draws`` < 100.
    """
    if n_draws < 100:
        raise ConfigError(f"n_draws must be >= 100 for stable percentiles, got {n_draws}.")
    m = analysis.model
    d = metric or metric_draw_of(analysis, setting, level=level)
    rng = np.random.default_rng(seed)
    active = _active(analysis, setting)
    mult: dict[str, np.ndarray] = {}
    inputs: list[Uncertain] = []
    for name, label, kind in _INPUTS:
        width = m.price_uncertainty if kind == "price" else m.value_uncertainty
        # Every input is drawn, used or not, so one seed gives the same stream of draws.
        draws = rng.uniform(1.0 - width, 1.0 + width, n_draws)
        if (name, label, kind) in active and width > 0:
            mult[name] = draws
            inputs.append(
                Uncertain(
                    name,
                    label,
                    1.0,
                    1.0 - width,
                    1.0 + width,
                    "x base",
                    f"uniform +-{width:.0%} (value.{kind}_uncertainty)",
                )
            )
    metric_draws = _draw_metric(np.random.default_rng([seed, metric_stream]), d, n_draws)
    inputs.append(
        Uncertain("metric", m.value_metric, d.point, d.low, d.high, m.value_metric, d.source)
    )
    npv, roi = npv_roi(analysis, setting, metric_draws, mult, extra=extra)
    gain_negative = np.where(np.isnan(roi), 0.0, roi < 0)
    base_npv = float(npv_roi(analysis, setting, d.point, {}, extra=extra)[0])
    bars = []
    for u in inputs:
        if u.name == "metric":
            lo = float(npv_roi(analysis, setting, u.low, {}, extra=extra)[0])
            hi = float(npv_roi(analysis, setting, u.high, {}, extra=extra)[0])
        else:
            lo = float(npv_roi(analysis, setting, d.point, {u.name: u.low}, extra=extra)[0])
            hi = float(npv_roi(analysis, setting, d.point, {u.name: u.high}, extra=extra)[0])
        bars.append(TornadoBar(u.name, u.label, u.low, u.high, lo, hi))
    bars.sort(key=lambda b: b.swing_usd, reverse=True)
    finite_roi = roi[np.isfinite(roi)]
    q = np.percentile(npv, [5, 50, 95])
    rq = np.percentile(finite_roi, [5, 50, 95]) if finite_roi.size else [math.nan] * 3
    return RiskResult(
        key=key or setting.key,
        n_draws=n_draws,
        seed=seed,
        base_npv_usd=base_npv,
        p_loss=float(np.mean(gain_negative)),
        npv_p5_usd=float(q[0]),
        npv_p50_usd=float(q[1]),
        npv_p95_usd=float(q[2]),
        npv_mean_usd=float(np.mean(npv)),
        roi_p5=float(rq[0]),
        roi_p50=float(rq[1]),
        roi_p95=float(rq[2]),
        inputs=tuple(inputs),
        tornado=tuple(bars),
        method=(
            f"Monte Carlo, {n_draws:,} draws (numpy default_rng, seed {seed}): prices uniform "
            f"+-{m.price_uncertainty:.0%}, value inputs +-{m.value_uncertainty:.0%}, "
            f"metric from {d.source}"
        ),
        npv_usd=npv,
    )


# --- flags -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Flag:
    """A reason to trust a result less.

    Attributes:
        kind: ``overfitting``, ``val_test_gap``, ``unstable`` or ``extrapolation``.
        subject: The setting, lever or trial concerned.
        message: What was found, in one sentence, with the threshold used.
        trials: The trials behind it.
    """

    kind: str
    subject: str
    message: str
    trials: tuple[int, ...] = ()


def _overfit_trial(curve: Sequence[Mapping[str, float]], col: str, sign: float) -> Any:
    vals = [(p.get("epoch"), p.get(col), p.get("train_loss")) for p in curve]
    vals = [(e, v, t) for e, v, t in vals if v is not None and math.isfinite(v)]
    if len(vals) < 3:
        return None
    best = max(range(len(vals)), key=lambda i: sign * vals[i][1])
    drop = sign * (vals[best][1] - vals[-1][1])
    t_best, t_last = vals[best][2], vals[-1][2]
    train_falls = t_best is not None and t_last is not None and t_last < t_best
    return vals[best][0], vals[best][1], vals[-1][0], vals[-1][1], drop, train_falls


def risk_flags(
    record: StudyRecord,
    analysis: ValueAnalysis,
    *,
    marginals: Sequence[LeverMarginal] = (),
    max_extrapolation: float = 4.0,
) -> tuple[Flag, ...]:
    """Flag overfitting, validation-test gaps, unstable settings and far extrapolations.

    - overfitting: in most of a setting's trials the validation metric fell from its best
      epoch by more than ``max(2 points, 2 x pooled seed sd)`` while the training loss
      kept falling;
    - val_test_gap: the validation metric beats the test metric by more than
      ``max(5 points, 3 x pooled seed sd)`` (early stopping chose on validation);
    - unstable: the seeds' standard deviation exceeds ``max(2 points, 2 x the median
      setting's)``;
    - extrapolation: a forecast reaches more than ``max_extrapolation`` times the largest
      measured amount, or carries the forecaster's warnings.

    Points are 0.01 of a metric in [0, 1]; for other metrics 5% of the value stands in.
    """
    from payoff.analysis._value import bounded, completed

    metric = analysis.metric
    name = metric.removeprefix("test_")
    sign = 1.0 if analysis.maximize else -1.0
    pooled = analysis.seed_std if math.isfinite(analysis.seed_std) else 0.0
    done = completed(record.trials)
    flags: list[Flag] = []

    def unit(value: float) -> float:
        return 0.01 if bounded(metric) else 0.05 * abs(value) or 1e-12

    val_col = f"val_{name}"
    curves = record.curves
    by_trial = {int(r["number"]): r for r in done.to_dict(orient="records")}
    for s in analysis.settings:
        hits = []
        for n in s.trials:
            found = _overfit_trial(curves.get(n, []), val_col, sign)
            if found is None:
                continue
            _, best_v, _, _, drop, falls = found
            if falls and drop > max(2 * unit(best_v), 2 * pooled):
                hits.append((n, found))
        if hits and len(hits) * 2 > len(s.trials):
            n, (e_best, v_best, e_last, v_last, _, _) = hits[0]
            flags.append(
                Flag(
                    "overfitting",
                    s.key,
                    f"{len(hits)} of {s.n_seeds} trials overfit: e.g. trial {n}'s {val_col} "
                    f"fell from {v_best:.4g} (epoch {e_best}) to {v_last:.4g} (epoch {e_last}) "
                    "while the training loss kept falling",
                    tuple(h[0] for h in hits),
                )
            )
        vals = [by_trial[n].get(val_col) for n in s.trials if n in by_trial]
        vals = [float(v) for v in vals if v is not None and math.isfinite(float(v))]
        if vals:
            gap = sign * (float(np.mean(vals)) - s.metric_mean)
            limit = max(5 * unit(s.metric_mean), 3 * pooled)
            if gap > limit:
                flags.append(
                    Flag(
                        "val_test_gap",
                        s.key,
                        f"{val_col} ({np.mean(vals):.4g}) beats {metric} ({s.metric_mean:.4g}) "
                        f"by {gap:.3g} (> {limit:.3g}): validation results are optimistic",
                        s.trials,
                    )
                )
    stds = [s.metric_std for s in analysis.settings if s.n_seeds > 1]
    if stds:
        median = float(np.median(stds))
        for s in analysis.settings:
            limit = max(2 * unit(s.metric_mean), 2 * median)
            if s.n_seeds > 1 and s.metric_std > limit * (1 + 1e-9):
                flags.append(
                    Flag(
                        "unstable",
                        s.key,
                        f"{metric} varies with the seed: sd {s.metric_std:.3g} over "
                        f"{s.n_seeds} seeds (> {limit:.3g}); one training run may land far "
                        "from the mean",
                        s.trials,
                    )
                )
    for lm in marginals:
        step = lm.next
        if step is None:
            continue
        if step.extrapolation > max_extrapolation or step.warnings:
            why = (
                f"reaches {step.extrapolation:.1f}x the largest measured {step.unit}"
                if step.extrapolation > max_extrapolation
                else "; ".join(step.warnings)
            )
            flags.append(Flag("extrapolation", f"lever {lm.lever}", f"forecast {why}"))
    return tuple(flags)
