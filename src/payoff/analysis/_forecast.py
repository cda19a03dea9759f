"""Forecast a return curve beyond the measured sizes, with a calibrated interval.

The forecaster fits an ensemble of learning-curve families (``ENSEMBLE_FAMILIES``) to
the measured points, takes the median of their forecasts as the point, and builds the
interval from a residual *scale* that grows with how far the forecast reaches:

    scale = sqrt((c0 unit)^2 + (c1 |point - last|)^2 + (c2 spread)^2
                 + (c3 rmse)^2 + (c4 |slope| L)^2) * L^c5 * (8 / n)^c6

where ``L = log2(1 + max(at / max(sizes), 1))``, ``spread`` is the range of the family
forecasts, ``rmse`` the median fit residual, ``slope`` the rise per doubling over the
last three sizes, ``n`` the number of distinct sizes and ``unit`` the width of the
metric's bounds (the observed range for an unbounded metric). The interval is
``point + z_low * scale`` to ``point + z_high * scale``, ``z`` being the empirical
quantiles of ``(truth - point) / scale`` over reference curves (split-conformal), so its
coverage holds on curves like the reference ones. A flat or noisy curve gets 1.5 times
the scale and a warning; the scatter of repeated seeds is added for one future trial.

For an accuracy-like metric in [0, 1] (an error rate is mirrored first) against training
examples, measured at 4 or more sizes and not flat, a forecast beyond the largest size is
corrected by gradient-boosted trees learnt on real accuracy curves (``_learnt.py``): they
move the point from the median of the fits towards where such curves really went (plain
fits level off too soon), and scale the interval, which is then ``point + z * scale``
with its own split-conformal ``z``. Other metrics and levers keep the ensemble alone;
``Forecast.method`` says which path was taken.

The constants (``_LCDB_CALIBRATION`` and the correction) were learnt on the public part
of the Learning Curve Database (LCDB 1.0, Mohr, Viering, Loog, van Rijn et al., 2022:
accuracy curves of 20 scikit-learn learners on 121 OpenML data sets);
``benchmarks/lcdb_forecast.py --learn`` reproduces them and measures, by 5-fold
cross-validation over data sets, how they hold on curves they were not learnt on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from numpy.typing import ArrayLike

from payoff._errors import ConfigError
from payoff.analysis._curves import CURVE_FAMILIES, CurveFit, FloatArray, _fit_arrays
from payoff.analysis._learnt import Correction, features, learnt_correction, ramp

ENSEMBLE_FAMILIES: tuple[str, ...] = ("pow3", "pow4", "mmf", "logpower")
"""The families whose median forecast is the point (the best median on LCDB)."""

# Later sizes say more about where a curve goes: fit weights grow as (x / x_max)^0.5.
_TAIL_WEIGHT = 0.5
# Calibration reaches ~20x; a forecast further out gets a warning.
_CALIBRATED_RATIO = 32.0


@dataclass(frozen=True, slots=True)
class _Calibration:
    """Learnt constants of the interval (see the module docstring).

    Attributes:
        scale: c0..c6 of the scale formula.
        flag_factor: Multiplier of the scale for a flat or noisy curve (not learnt: a
            margin on top of what the clean reference curves need).
        tail_probs: Tail probabilities p of the quantile table (level = 1 - 2p).
        z_low: Quantiles of (truth - point) / scale at p (negative).
        z_high: Quantiles of (truth - point) / scale at 1 - p (positive).
        source: Where the constants were learnt.
    """

    scale: tuple[float, float, float, float, float, float, float]
    flag_factor: float
    tail_probs: tuple[float, ...]
    z_low: tuple[float, ...]
    z_high: tuple[float, ...]
    source: str

    def z(self, level: float) -> tuple[float, float, bool]:
        """Return (z_low, z_high) for a central ``level`` and whether it is calibrated."""
        return _z_table(self.tail_probs, self.z_low, self.z_high, level)


def _z_table(
    tail_probs: tuple[float, ...],
    z_low: tuple[float, ...],
    z_high: tuple[float, ...],
    level: float,
) -> tuple[float, float, bool]:
    """Interpolate a quantile table of (truth - point) / scale at a central ``level``."""
    p = (1.0 - level) / 2.0
    probs = np.array(tail_probs)
    lo, hi = np.array(z_low), np.array(z_high)
    order = np.argsort(probs)
    probs, lo, hi = probs[order], lo[order], hi[order]
    if p < probs[0]:
        # Beyond the table: stretch its widest entry by the normal tail ratio.
        nd = NormalDist()
        f = nd.inv_cdf(1.0 - p) / nd.inv_cdf(1.0 - probs[0])
        return float(lo[0] * f), float(hi[0] * f), False
    if p > probs[-1]:
        # Narrower than the table's narrowest: shrink linearly to zero at level 0.
        f = (0.5 - p) / (0.5 - probs[-1])
        return float(lo[-1] * f), float(hi[-1] * f), True
    return float(np.interp(p, probs, lo)), float(np.interp(p, probs, hi)), True


# Learnt on all 5,803 (curve, cutoff) forecasts of the public LCDB part by
# `benchmarks/lcdb_forecast.py --learn` (cutoffs 1/16, 1/8, 1/4 of the largest anchor).
_LCDB_CALIBRATION = _Calibration(
    scale=(0.0045, 0.0557, 0.0774, 1.1916, 0.0257, 1.0213, 0.7461),
    flag_factor=1.5,
    tail_probs=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
    z_low=(-5.4033, -3.5969, -1.8084, -1.3182, -0.8231, -0.277),
    z_high=(6.0717, 5.1086, 3.3763, 2.4799, 1.5939, 0.7401),
    source="LCDB 1.0 public part (accuracy curves, 121 OpenML data sets)",
)


@dataclass(frozen=True, slots=True)
class Forecast:
    """A return curve evaluated beyond what was measured, with an interval.

    Attributes:
        point: The forecast score at ``at``.
        low: Lower end of the central interval at ``level``.
        high: Upper end of the interval.
        level: The interval's nominal coverage (0.9: 90% of the truths inside).
        at: The size the forecast is for.
        extrapolation: ``at / max(sizes)``: how far beyond the data it reaches.
        n_points: Distinct sizes measured.
        method: How the point and the interval were made.
        ceiling: The fitted limit of the score as the size grows, or NaN.
        ceiling_low: Lower end of the ceiling's interval, or NaN.
        ceiling_high: Upper end of the ceiling's interval, or NaN.
        warnings: Reasons to trust the forecast less (few points, flat or noisy curve,
            extrapolating beyond the calibrated range...).
    """

    point: float
    low: float
    high: float
    level: float
    at: float
    extrapolation: float
    n_points: int
    method: str
    ceiling: float
    ceiling_low: float
    ceiling_high: float
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Inverse:
    """How much of a lever a target needs: the inverse of a forecast.

    Attributes:
        target: The score asked for.
        point: Size at which the point forecast reaches the target (``inf``: never
            within a million times the largest measured size).
        low: Optimistic size: where the interval's favourable end reaches it.
        high: Pessimistic size: where the interval's unfavourable end reaches it
            (``inf`` when even that is not sure).
        level: The interval's nominal coverage.
        reachable: False when the target lies beyond the ceiling's interval.
        ceiling: The fitted limit of the score, or NaN.
        ceiling_low: Lower end of the ceiling's interval, or NaN.
        ceiling_high: Upper end of the ceiling's interval, or NaN.
        message: The answer in one plain sentence.
        warnings: As in ``Forecast``.
    """

    target: float
    point: float
    low: float
    high: float
    level: float
    reachable: bool
    ceiling: float
    ceiling_low: float
    ceiling_high: float
    message: str
    warnings: tuple[str, ...] = ()


# --- preparing the data ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Curve:
    """The measured curve, averaged per size and turned into a rising score ``r``.

    ``r = y - lo`` for a bounded rising metric, ``hi - y`` for a bounded falling one;
    an unbounded metric is shifted so that its lowest mean sits one range above 0 (the
    log-power family rises from 0).
    """

    sizes: FloatArray
    r: FloatArray
    counts: FloatArray
    seed_sd: float  # pooled spread of repeated measurements (0 without repeats)
    r_max: float | None  # the upper bound in rising units, if the metric is bounded
    unit: float  # width of the bounds, or the observed range
    sign: float
    offset: float  # y = offset + sign * r

    def to_score(self, r: FloatArray | float) -> FloatArray:
        return self.offset + self.sign * np.asarray(r, dtype=np.float64)


def _prepare(
    sizes: ArrayLike,
    scores: ArrayLike,
    *,
    higher_is_better: bool,
    bounds: tuple[float, float] | None,
) -> _Curve:
    try:
        s = np.asarray(sizes, dtype=np.float64).ravel()
        y = np.asarray(scores, dtype=np.float64).ravel()
    except (TypeError, ValueError) as err:
        raise ConfigError(f"sizes and scores must be numbers: {err}.") from None
    if len(s) != len(y):
        raise ConfigError(
            f"sizes and scores must have the same length, got {len(s)} and {len(y)}."
        )
    if len(s) == 0:
        raise ConfigError("a forecast needs at least one measured (size, score) point, got 0.")
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ConfigError(f"sizes must be finite and > 0, got {s.tolist()!r}.")
    if not np.all(np.isfinite(y)):
        raise ConfigError(
            f"scores must be finite numbers, got {y.tolist()!r}. Drop failed trials first."
        )
    if bounds is not None:
        lo, hi = (float(b) for b in bounds)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise ConfigError(f"bounds must be two finite numbers low < high, got {bounds!r}.")
        if np.any(y < lo) or np.any(y > hi):
            raise ConfigError(
                f"scores must lie within bounds {bounds!r}, got {y.tolist()!r}. "
                "Pass bounds=None for an unbounded metric."
            )
    uniq, inverse, counts = np.unique(s, return_inverse=True, return_counts=True)
    means = np.bincount(inverse, weights=y) / counts
    resid = y - means[inverse]
    dof = len(y) - len(uniq)
    seed_sd = math.sqrt(float(resid @ resid) / dof) if dof > 0 else 0.0
    sign = 1.0 if higher_is_better else -1.0
    if bounds is not None:
        lo, hi = (float(b) for b in bounds)
        offset = lo if higher_is_better else hi
        r_max: float | None = hi - lo
        unit = hi - lo
    else:
        span = float(np.ptp(means))
        unit = span if span > 0 else max(abs(float(means.mean())), 1.0)
        # Shift so the lowest rising mean sits one range above zero.
        offset = float((sign * means).min()) * sign - sign * unit
        r_max = None
    r = sign * (means - offset)
    return _Curve(uniq, r, counts.astype(np.float64), seed_sd, r_max, unit, sign, offset)


# --- the ensemble ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Ensemble:
    """The fitted ensemble of one curve and what the interval needs from it."""

    curve: _Curve
    fits: tuple[CurveFit, ...]
    last: float  # mean rising score at the largest size
    slope: float  # |rise| per doubling over the last three sizes
    rmse: float  # median fit residual (rising units)
    flags: tuple[str, ...]  # "few", "flat", "noisy"

    @property
    def n_points(self) -> int:
        return len(self.curve.sizes)

    def members(self, at: FloatArray) -> FloatArray:
        """Family forecasts in rising units, clipped to the bounds (families x sizes)."""
        if not self.fits:
            return np.full((1, len(at)), self.last)
        preds = np.array([f.predict(at) for f in self.fits])
        preds = np.where(np.isfinite(preds), preds, self.last)
        hi = self.curve.r_max if self.curve.r_max is not None else np.inf
        return np.clip(preds, 0.0 if self.curve.r_max is not None else -np.inf, hi)

    def ceilings(self) -> FloatArray:
        c = np.array([f.ceiling for f in self.fits if math.isfinite(f.ceiling)])
        if self.curve.r_max is not None:
            c = np.clip(c, 0.0, self.curve.r_max)
        return c


def _fit_ensemble(curve: _Curve) -> _Ensemble:
    n = len(curve.sizes)
    r = curve.r
    last = float(r[-1])
    flags: list[str] = []
    if n < 3:
        flags.append("few")
        slope = abs(float(r[-1] - r[0])) / max(math.log2(curve.sizes[-1] / curve.sizes[0]), 1.0)
        return _Ensemble(curve, (), last, slope, 0.0, tuple(flags))
    slope = abs(float(r[-1] - r[-3])) / math.log2(curve.sizes[-1] / curve.sizes[-3])
    span = float(np.ptp(r))
    noise_se = curve.seed_sd / math.sqrt(float(curve.counts.mean()))
    if span <= max(1e-3 * curve.unit, 2.0 * noise_se):
        flags.append("flat")
    scale = float(curve.sizes[-1])
    x = curve.sizes / scale
    w = curve.counts * x**_TAIL_WEIGHT
    w = w / w.mean()
    fits = []
    for name in ENSEMBLE_FAMILIES:
        family = CURVE_FAMILIES[name]
        # One local search, from the best start on the family's grid: a second restart
        # changed no LCDB figure and doubled the time per curve.
        params, sse = _fit_arrays(family, x, r, w, ceiling_max=curve.r_max, n_restarts=1)
        fits.append(
            CurveFit(family, tuple(float(p) for p in params), scale, math.sqrt(sse / n), n)
        )
    rmse = float(np.median([f.rmse for f in fits]))
    if "flat" not in flags:
        # Falling overall, or scatter that rivals the rise: the trend is not to be trusted.
        falling = float(r[-1]) < float(r[0]) - 2.0 * noise_se
        if falling or rmse > 0.3 * span:
            flags.append("noisy")
    return _Ensemble(curve, tuple(fits), last, slope, rmse, tuple(flags))


def _scale_from(
    cal: _Calibration,
    *,
    unit: ArrayLike,
    point: ArrayLike,
    last: ArrayLike,
    spread: ArrayLike,
    rmse: ArrayLike,
    slope: ArrayLike,
    ratio: ArrayLike,
    n_points: ArrayLike,
    flagged: ArrayLike,
) -> FloatArray:
    """The residual scale of the module docstring, elementwise over its features."""
    c0, c1, c2, c3, c4, c5, c6 = cal.scale
    lr = np.log2(1.0 + np.maximum(np.asarray(ratio, dtype=np.float64), 1.0))
    s = np.sqrt(
        (c0 * np.asarray(unit)) ** 2
        + (c1 * np.abs(np.asarray(point) - np.asarray(last))) ** 2
        + (c2 * np.asarray(spread)) ** 2
        + (c3 * np.asarray(rmse)) ** 2
        + (c4 * np.asarray(slope) * lr) ** 2
    )
    s = s * lr**c5 * (8.0 / np.asarray(n_points, dtype=np.float64)) ** c6
    return np.where(np.asarray(flagged, dtype=bool), s * cal.flag_factor, s)


def _scale(
    ens: _Ensemble, point: FloatArray, spread: FloatArray, ratio: FloatArray, cal: _Calibration
) -> FloatArray:
    return _scale_from(
        cal,
        unit=ens.curve.unit,
        point=point,
        last=ens.last,
        spread=spread,
        rmse=ens.rmse,
        slope=ens.slope,
        ratio=ratio,
        n_points=ens.n_points,
        flagged=bool(ens.flags),
    )


@dataclass(frozen=True, slots=True)
class _Band:
    """Point and interval at several sizes, in the metric's own units."""

    point: FloatArray
    low: FloatArray
    high: FloatArray
    calibrated: bool
    learnt: bool  # whether the learnt correction moved the point at some size


def _learns(ens: _Ensemble) -> bool:
    """Whether the learnt correction applies: an accuracy-like metric in [0, 1] (rising,
    or mirrored) at 4 or more sizes, like the curves it was learnt on, and not flat (a
    flat line leaves the trees nothing to correct; its widened interval stands)."""
    c = ens.curve
    accuracy_like = c.r_max == 1.0 and c.offset == (0.0 if c.sign > 0 else 1.0)
    return bool(ens.fits) and ens.n_points >= 4 and accuracy_like and "flat" not in ens.flags


def _band(
    ens: _Ensemble,
    at: FloatArray,
    level: float,
    cal: _Calibration,
    learnt: Correction | None = None,
) -> _Band:
    """Point and interval at sizes ``at``; ``learnt`` corrects an accuracy-like curve."""
    curve = ens.curve
    ratio = at / curve.sizes[-1]
    members = ens.members(at)
    point = np.median(members, axis=0)
    spread = np.ptp(members, axis=0)
    z_lo, z_hi, calibrated = cal.z(level)
    used = False
    if "few" in ens.flags:
        # No curve to fit: the last level, with an interval as wide as the range seen
        # (at least a twentieth of the metric's unit) stretched by the reach.
        lr = np.log2(1.0 + np.maximum(ratio, 1.0))
        s = 3.0 * lr * max(float(np.ptp(curve.r)), 0.05 * curve.unit, curve.seed_sd)
        low, high = point - s, point + 2.0 * s
    else:
        s = _scale(ens, point, spread, ratio, cal)
        low, high = point + z_lo * s, point + z_hi * s
        w = ramp(np.log2(ratio))
        if learnt is not None and _learns(ens) and w.any():
            used = True
            # The trees learnt flat and noisy curves too: no extra margin for a flag.
            shift, scale = learnt.shift_and_scale(features(ens, at))
            l_lo, l_hi, l_cal = _z_table(learnt.tail_probs, learnt.z_low, learnt.z_high, level)
            calibrated = calibrated and l_cal
            fixed = np.clip(point + shift, 0.0, 1.0)
            # Within the measured sizes the fits stand; half a doubling out the trees do.
            low = (1.0 - w) * low + w * (fixed + l_lo * scale)
            high = (1.0 - w) * high + w * (fixed + l_hi * scale)
            point = (1.0 - w) * point + w * fixed
    if curve.seed_sd > 0:
        # One future trial scatters around the mean like the repeated ones did.
        k = NormalDist().inv_cdf(0.5 + level / 2.0) * curve.seed_sd
        low = point - np.hypot(point - low, k)
        high = point + np.hypot(high - point, k)
    if curve.r_max is not None:
        point, low, high = (np.clip(v, 0.0, curve.r_max) for v in (point, low, high))
    p, lo_, hi_ = curve.to_score(point), curve.to_score(low), curve.to_score(high)
    if curve.sign < 0:
        lo_, hi_ = hi_, lo_
    return _Band(p, lo_, hi_, calibrated, used)


def _ceiling(
    ens: _Ensemble,
    level: float,
    cal: _Calibration,
    learnt: Correction | None = None,
    band: _Band | None = None,
) -> tuple[float, float, float]:
    """Median family ceiling, widened by the calibrated scale at the calibrated reach.

    Where the learnt correction applies, the ceiling is where the corrected forecast
    levels off instead: its band at ``_MAX_REACH`` times the largest size (the last size
    of ``band`` when given, so a caller that has it needs no second evaluation). No
    forecast then passes its own ceiling.
    """
    if not ens.fits:
        return math.nan, math.nan, math.nan
    if learnt is not None and _learns(ens):
        if band is None:
            band = _band(ens, np.array([_far(ens)]), level, cal, learnt)
        return float(band.point[-1]), float(band.low[-1]), float(band.high[-1])
    c = ens.ceilings()
    if len(c) == 0:
        return math.nan, math.nan, math.nan
    mid = float(np.median(c))
    s = float(
        _scale(
            ens,
            np.array([mid]),
            np.array([float(np.ptp(c))]),
            np.array([_CALIBRATED_RATIO]),
            cal,
        )[0]
    )
    z_lo, z_hi, _ = cal.z(level)
    lo, hi = float(c.min()) + z_lo * s, float(c.max()) + z_hi * s
    if ens.curve.r_max is not None:
        mid, lo, hi = (min(max(v, 0.0), ens.curve.r_max) for v in (mid, lo, hi))
    vals = [float(v) for v in ens.curve.to_score(np.array([mid, lo, hi]))]
    if ens.curve.sign < 0:
        vals[1], vals[2] = vals[2], vals[1]
    return vals[0], vals[1], vals[2]


def _warnings(ens: _Ensemble, ratio: float, calibrated: bool) -> tuple[str, ...]:
    out = []
    n = ens.n_points
    if "few" in ens.flags:
        out.append(
            f"only {n} distinct size{'s' if n != 1 else ''} measured: a curve needs >= 3; "
            "the forecast is the last level with a wide interval. Measure more sizes."
        )
    if "flat" in ens.flags:
        out.append(
            "the curve is flat over the measured sizes: more of this lever may not help, "
            "or its effect starts later; the interval is widened."
        )
    if "noisy" in ens.flags:
        out.append(
            "the curve is noisy or not rising (scatter rivals the trend): the interval is "
            "widened. More seeds per size would steady it."
        )
    if ratio > _CALIBRATED_RATIO:
        out.append(
            f"extrapolating {ratio:.0f}x beyond the largest measured size; the interval "
            f"was calibrated up to about {_CALIBRATED_RATIO:.0f}x."
        )
    if not calibrated:
        out.append("the interval level lies beyond the calibrated table (0.5-0.99).")
    return tuple(out)


def _method(ens: _Ensemble, cal: _Calibration, learnt: Correction | None, used: bool) -> str:
    if not ens.fits:
        return "last measured level (too few sizes to fit a curve)"
    fits = f"median of {', '.join(ENSEMBLE_FAMILIES)} fits (bounded least squares)"
    if used and learnt is not None:
        return (
            f"{fits}, corrected by gradient-boosted trees learnt on {learnt.source}; "
            "interval: split-conformal, scaled by the trees' 5-95% residual quantiles"
        )
    why = ""
    if learnt is not None and not _learns(ens):
        why = (
            " (no learnt correction: it was learnt on accuracy-like curves in [0, 1] "
            "measured at 4 or more sizes, and a flat curve has nothing to correct)"
        )
    return f"{fits}{why}; interval: split-conformal residual scale learnt on {cal.source}"


def _check_level(level: float) -> float:
    if not (isinstance(level, int | float) and 0.0 < float(level) < 1.0):
        raise ConfigError(f"level must be a number in (0, 1), e.g. 0.9, got {level!r}.")
    return float(level)


def _check_at(at: float) -> float:
    try:
        value = float(at)
    except (TypeError, ValueError):
        raise ConfigError(f"at must be a size > 0, got {at!r}.") from None
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"at must be a finite size > 0, got {at!r}.")
    return value


def _forecast_from(
    ens: _Ensemble,
    at: float,
    level: float,
    cal: _Calibration,
    learnt: Correction | None = None,
) -> Forecast:
    band = _band(ens, np.array([at]), level, cal, learnt)
    ratio = at / float(ens.curve.sizes[-1])
    ceiling, c_lo, c_hi = _ceiling(ens, level, cal, learnt)
    return Forecast(
        point=float(band.point[0]),
        low=float(band.low[0]),
        high=float(band.high[0]),
        level=level,
        at=at,
        extrapolation=ratio,
        n_points=ens.n_points,
        method=_method(ens, cal, learnt, band.learnt),
        ceiling=ceiling,
        ceiling_low=c_lo,
        ceiling_high=c_hi,
        warnings=_warnings(ens, ratio, band.calibrated),
    )


def forecast_curve(
    sizes: ArrayLike,
    scores: ArrayLike,
    at: float,
    *,
    level: float = 0.9,
    higher_is_better: bool = True,
    bounds: tuple[float, float] | None = (0.0, 1.0),
    correction: bool = True,
) -> Forecast:
    """Forecast the score at size ``at`` from measured (size, score) points.

    Repeated sizes (several seeds) are averaged, and their scatter widens the interval
    (it is for one more trial at ``at``). Too few sizes, a flat or a noisy curve give a
    forecast with a wide interval and a warning rather than an error.

    Args:
        sizes: Measured sizes of the lever (examples, epochs...), each > 0.
        scores: The metric at each size.
        at: The size to forecast for.
        level: Nominal coverage of the interval.
        higher_is_better: False for an error metric that falls with size.
        bounds: The metric's range, ``None`` if unbounded; forecasts stay inside it.
        correction: Correct an accuracy-like curve with the trees learnt on LCDB's
            accuracy-against-training-set-size curves (sizes as counts of examples).
            Pass False for other levers (epochs, parameters), which those curves say
            nothing about.

    Raises:
        ConfigError: NaN or infinite values, mismatched lengths, sizes or ``at`` <= 0,
            scores outside ``bounds``, or ``level`` outside (0, 1).
    """
    curve = _prepare(sizes, scores, higher_is_better=higher_is_better, bounds=bounds)
    return _forecast_from(
        _fit_ensemble(curve),
        _check_at(at),
        _check_level(level),
        _LCDB_CALIBRATION,
        learnt_correction() if correction else None,
    )


def _crossing(grid: FloatArray, values: FloatArray, target: float) -> float:
    """First size on ``grid`` where ``values`` reach ``target`` (log-interpolated)."""
    hit = np.nonzero(values >= target)[0]
    if len(hit) == 0:
        return math.inf
    i = int(hit[0])
    if i == 0:
        return float(grid[0])
    v0, v1 = float(values[i - 1]), float(values[i])
    frac = (target - v0) / (v1 - v0) if v1 > v0 else 1.0
    return float(np.exp(np.log(grid[i - 1]) + frac * np.log(grid[i] / grid[i - 1])))


_MAX_REACH = 2.0**20


def _far(ens: _Ensemble) -> float:
    """The furthest size forecasts look at: ``_MAX_REACH`` times the largest measured."""
    return float(ens.curve.sizes[-1]) * _MAX_REACH


def required_size(
    sizes: ArrayLike,
    scores: ArrayLike,
    target: float,
    *,
    level: float = 0.9,
    higher_is_better: bool = True,
    bounds: tuple[float, float] | None = (0.0, 1.0),
    correction: bool = True,
) -> Inverse:
    """Estimate the size at which the metric reaches ``target``, with an interval.

    Uses the same ensemble and interval as ``forecast_curve``: ``point`` is where the
    point forecast reaches the target, ``low``/``high`` where the favourable and the
    unfavourable ends of the interval do. Sizes are searched up to 2^20 times the
    largest measured one; beyond that the answer is ``inf``.

    Args:
        sizes: Measured sizes of the lever, each > 0.
        scores: The metric at each size.
        target: The score wanted (a maximum for an error metric).
        level: Nominal coverage of the interval.
        higher_is_better: False for an error metric that falls with size.
        bounds: The metric's range, ``None`` if unbounded.
        correction: As in ``forecast_curve``.

    Raises:
        ConfigError: invalid inputs as in ``forecast_curve``, or a non-finite target.
    """
    level = _check_level(level)
    try:
        tgt = float(target)
    except (TypeError, ValueError):
        raise ConfigError(f"target must be a number, got {target!r}.") from None
    if not math.isfinite(tgt):
        raise ConfigError(f"target must be a finite number, got {target!r}.")
    curve = _prepare(sizes, scores, higher_is_better=higher_is_better, bounds=bounds)
    ens = _fit_ensemble(curve)
    cal = _LCDB_CALIBRATION
    learnt = learnt_correction() if correction else None
    grid = np.geomspace(float(curve.sizes[0]), _far(ens), 400)
    band = _band(ens, grid, level, cal, learnt)
    ceiling, c_lo, c_hi = _ceiling(ens, level, cal, learnt, band)
    sign = 1.0 if higher_is_better else -1.0
    # In "rising" terms: reach sign * value >= sign * target.
    point = _crossing(grid, sign * band.point, sign * tgt)
    favourable = band.high if higher_is_better else band.low
    unfavourable = band.low if higher_is_better else band.high
    low = _crossing(grid, sign * favourable, sign * tgt)
    high = _crossing(grid, sign * unfavourable, sign * tgt)
    beyond = c_hi if higher_is_better else c_lo
    reachable = not (math.isfinite(beyond) and sign * tgt > sign * beyond)
    outside = bounds is not None and not (bounds[0] <= tgt <= bounds[1])
    if outside or not reachable:
        reachable = False
        low = point = high = math.inf
    if outside:
        message = f"target {tgt:.4g} lies outside the metric's bounds {tuple(bounds)!r}."
    else:
        message = _inverse_message(tgt, point, low, high, level, reachable, ceiling, c_lo, c_hi)
    reach = point / float(curve.sizes[-1]) if math.isfinite(point) else 1.0
    return Inverse(
        target=tgt,
        point=point,
        low=low,
        high=high,
        level=level,
        reachable=reachable,
        ceiling=ceiling,
        ceiling_low=c_lo,
        ceiling_high=c_hi,
        message=message,
        warnings=_warnings(ens, reach, band.calibrated),
    )


def _fmt_size(v: float) -> str:
    return "never (within 2^20x the data)" if math.isinf(v) else f"{v:,.0f}"


def _inverse_message(
    target: float,
    point: float,
    low: float,
    high: float,
    level: float,
    reachable: bool,
    ceiling: float,
    c_lo: float,
    c_hi: float,
) -> str:
    pct = f"{level:.0%}"
    ceil = (
        f"the fitted ceiling is {ceiling:.4g} ({pct} interval {c_lo:.4g} to {c_hi:.4g})"
        if math.isfinite(ceiling)
        else "no ceiling could be fitted"
    )
    if not reachable:
        return f"target {target:.4g} looks out of reach: the curve levels off below it; {ceil}."
    if math.isinf(point):
        return (
            f"target {target:.4g} is not reached by the forecast curve; optimistically at "
            f"size {_fmt_size(low)}. {ceil[0].upper() + ceil[1:]}."
        )
    return (
        f"target {target:.4g} is reached at about size {_fmt_size(point)} "
        f"({pct} interval {_fmt_size(low)} to {_fmt_size(high)}); {ceil}."
    )
