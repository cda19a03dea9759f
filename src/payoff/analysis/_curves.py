"""Parametric learning-curve families and their bounded least-squares fits.

Every family describes a score that rises with the size of a lever (labelled examples,
epochs, parameters) towards a ceiling. Sizes are divided by the largest observed size
before fitting, so the data sit in ``(0, 1]`` whatever their unit; this keeps the
exponents and rates of all families on one well-conditioned scale.

A fit runs in two stages:

1. *Variable projection on a grid.* Each family is linear in one or two of its
   parameters once the others are fixed (``a`` and ``b`` of ``a - b x^-c`` once ``c`` is
   known). For a grid of the nonlinear parameters the linear ones are solved in closed
   form, all grid points at once, which finds the basin of the global minimum cheaply.
2. *Polish with restarts.* The best few distinct grid points start
   ``scipy.optimize.least_squares`` (trust-region reflective, with bounds on every
   parameter); the lowest residual wins.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import least_squares

from payoff._errors import ConfigError

FloatArray = NDArray[np.float64]

# Grid-point parameters and designs: ``theta`` has one row per grid point.
_Design = Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray | None]]


@dataclass(frozen=True, slots=True)
class CurveFamily:
    """A parametric learning-curve family ``y = f(x; params)``.

    Attributes:
        name: Short name (``"pow3"``, ``"mmf"``...), the key in ``CURVE_FAMILIES``.
        formula: The formula in plain text, ``x`` being the size divided by the largest
            observed size.
        param_names: The parameter names, in the order of ``CurveFit.params``.
        ceiling_param: The parameter that is the limit as ``x`` grows, or ``None``.
    """

    name: str
    formula: str
    param_names: tuple[str, ...]
    ceiling_param: str | None
    predict_fn: Callable[[FloatArray, FloatArray], FloatArray] = field(repr=False)
    # Nonlinear parameter grid (one row per grid point) and the linear design for it.
    grid: FloatArray = field(repr=False)
    design_fn: _Design = field(repr=False)
    # Maps (grid row, linear coefficients) to the full parameter vector.
    assemble_fn: Callable[[FloatArray, FloatArray], FloatArray] = field(repr=False)
    # Bounds of the nonlinear parameters (by name); linear ones come from the data.
    fixed_bounds: Mapping[str, tuple[float, float]] = field(repr=False)
    # Linear coefficient that must be >= 0 for a rising curve (index into the linear
    # coefficients), or None.
    nonneg_linear: int | None = field(repr=False, default=None)

    def predict(self, x: ArrayLike, params: Sequence[float]) -> FloatArray:
        """Evaluate the family at normalised sizes ``x`` for ``params``."""
        xs = np.asarray(x, dtype=np.float64)
        with np.errstate(all="ignore"):
            return self.predict_fn(xs, np.asarray(params, dtype=np.float64))

    def ceiling(self, params: Sequence[float]) -> float:
        """Return the limit of the curve as the size grows, or NaN if it has none."""
        if self.ceiling_param is None:
            return math.nan
        return float(params[self.param_names.index(self.ceiling_param)])


@dataclass(frozen=True, slots=True)
class CurveFit:
    """One family fitted to one curve.

    Attributes:
        family: The fitted family.
        params: Fitted parameters, in ``family.param_names`` order.
        x_scale: The size that maps to ``x = 1`` (the largest observed size).
        rmse: Root mean squared residual of the fit, in score units.
        n_points: How many (distinct) sizes the fit saw.
    """

    family: CurveFamily
    params: tuple[float, ...]
    x_scale: float
    rmse: float
    n_points: int

    def predict(self, sizes: ArrayLike) -> FloatArray:
        """Evaluate the fitted curve at ``sizes`` (in the original unit)."""
        x = np.asarray(sizes, dtype=np.float64) / self.x_scale
        return self.family.predict(x, self.params)

    @property
    def ceiling(self) -> float:
        """The fitted limit as the size grows, or NaN if the family has none."""
        return self.family.ceiling(self.params)


# --- family definitions ------------------------------------------------------------------


def _mesh(*axes: FloatArray) -> FloatArray:
    return np.array(list(itertools.product(*axes)), dtype=np.float64)


def _rising(g: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Design of ``a - b g``: columns 1 and -g."""
    return np.ones_like(g), -g


def _pow3_design(x: FloatArray, th: FloatArray) -> tuple[FloatArray, FloatArray]:
    return _rising(x[None, :] ** -th[:, :1])


def _pow4_design(x: FloatArray, th: FloatArray) -> tuple[FloatArray, FloatArray]:
    return _rising((x[None, :] + th[:, 1:2]) ** -th[:, :1])


def _exp3_design(x: FloatArray, th: FloatArray) -> tuple[FloatArray, FloatArray]:
    return _rising(np.exp(-th[:, :1] * x[None, :]))


def _weibull_design(x: FloatArray, th: FloatArray) -> tuple[FloatArray, FloatArray]:
    return _rising(np.exp(-th[:, :1] * x[None, :] ** th[:, 1:2]))


def _janoschek_design(x: FloatArray, th: FloatArray) -> tuple[FloatArray, FloatArray]:
    g = np.exp(-th[:, :1] * x[None, :] ** th[:, 1:2])
    return 1.0 - g, g


def _mmf_design(x: FloatArray, th: FloatArray) -> tuple[FloatArray, FloatArray]:
    xd = x[None, :] ** th[:, 1:2]
    den = th[:, :1] + xd
    return th[:, :1] / den, xd / den


def _logpower_design(x: FloatArray, th: FloatArray) -> tuple[FloatArray, None]:
    return 1.0 / (1.0 + (x[None, :] / np.exp(th[:, :1])) ** th[:, 1:2]), None


def _pow3(x: FloatArray, p: FloatArray) -> FloatArray:
    return p[0] - p[1] * x ** -p[2]


def _pow4(x: FloatArray, p: FloatArray) -> FloatArray:
    return p[0] - p[1] * (x + p[3]) ** -p[2]


def _exp3(x: FloatArray, p: FloatArray) -> FloatArray:
    return p[0] - p[1] * np.exp(-p[2] * x)


def _weibull(x: FloatArray, p: FloatArray) -> FloatArray:
    return p[0] - p[1] * np.exp(-p[2] * x ** p[3])


def _janoschek(x: FloatArray, p: FloatArray) -> FloatArray:
    return p[0] - (p[0] - p[1]) * np.exp(-p[2] * x ** p[3])


def _mmf(x: FloatArray, p: FloatArray) -> FloatArray:
    xd = x ** p[3]
    return (p[0] * p[1] + p[2] * xd) / (p[1] + xd)


def _logpower(x: FloatArray, p: FloatArray) -> FloatArray:
    return p[0] / (1.0 + (x / np.exp(p[1])) ** p[2])


def _ab_then(th: FloatArray, beta: FloatArray) -> FloatArray:
    return np.concatenate([beta, th])


def _mmf_assemble(th: FloatArray, beta: FloatArray) -> FloatArray:
    return np.array([beta[0], th[0], beta[1], th[1]])


def _logpower_assemble(th: FloatArray, beta: FloatArray) -> FloatArray:
    return np.array([beta[0], th[0], th[1]])


_C_POW = (0.02, 4.0)
_D_POW4 = (0.0, 4.0)
_C_EXP = (0.05, 1000.0)
_C_WBL = (0.01, 1000.0)
_D_WBL = (0.05, 4.0)

_FAMILIES: tuple[CurveFamily, ...] = (
    CurveFamily(
        name="pow3",
        formula="a - b * x**-c",
        param_names=("a", "b", "c"),
        ceiling_param="a",
        predict_fn=_pow3,
        grid=_mesh(np.geomspace(0.03, 3.0, 24)),
        design_fn=_pow3_design,
        assemble_fn=_ab_then,
        fixed_bounds={"c": _C_POW},
        nonneg_linear=1,
    ),
    CurveFamily(
        name="pow4",
        formula="a - b * (x + d)**-c",
        param_names=("a", "b", "c", "d"),
        ceiling_param="a",
        predict_fn=_pow4,
        grid=_mesh(np.geomspace(0.05, 3.0, 10), np.r_[0.0, np.geomspace(0.003, 2.0, 8)]),
        design_fn=_pow4_design,
        assemble_fn=_ab_then,
        fixed_bounds={"c": _C_POW, "d": _D_POW4},
        nonneg_linear=1,
    ),
    CurveFamily(
        name="mmf",
        formula="(a * b + c * x**d) / (b + x**d)",
        param_names=("a", "b", "c", "d"),
        ceiling_param="c",
        predict_fn=_mmf,
        grid=_mesh(np.geomspace(1e-3, 30.0, 10), np.geomspace(0.15, 3.0, 8)),
        design_fn=_mmf_design,
        assemble_fn=_mmf_assemble,
        fixed_bounds={"b": (1e-6, 1e4), "d": (0.05, 5.0)},
    ),
    CurveFamily(
        name="weibull",
        formula="a - b * exp(-c * x**d)",
        param_names=("a", "b", "c", "d"),
        ceiling_param="a",
        predict_fn=_weibull,
        grid=_mesh(np.geomspace(0.05, 300.0, 10), np.geomspace(0.1, 2.5, 8)),
        design_fn=_weibull_design,
        assemble_fn=_ab_then,
        fixed_bounds={"c": _C_WBL, "d": _D_WBL},
        nonneg_linear=1,
    ),
    CurveFamily(
        name="exp3",
        formula="a - b * exp(-c * x)",
        param_names=("a", "b", "c"),
        ceiling_param="a",
        predict_fn=_exp3,
        grid=_mesh(np.geomspace(0.1, 500.0, 24)),
        design_fn=_exp3_design,
        assemble_fn=_ab_then,
        fixed_bounds={"c": _C_EXP},
        nonneg_linear=1,
    ),
    CurveFamily(
        name="logpower",
        formula="a / (1 + (x / exp(b))**c)",
        param_names=("a", "b", "c"),
        ceiling_param="a",
        predict_fn=_logpower,
        grid=_mesh(np.linspace(-7.0, 2.0, 10), -np.geomspace(0.1, 3.0, 8)),
        design_fn=_logpower_design,
        assemble_fn=_logpower_assemble,
        # c < 0 keeps the curve rising towards a.
        fixed_bounds={"b": (-12.0, 6.0), "c": (-5.0, -0.01)},
    ),
    CurveFamily(
        name="janoschek",
        formula="a - (a - b) * exp(-c * x**d)",
        param_names=("a", "b", "c", "d"),
        ceiling_param="a",
        predict_fn=_janoschek,
        grid=_mesh(np.geomspace(0.05, 300.0, 10), np.geomspace(0.1, 2.5, 8)),
        design_fn=_janoschek_design,
        assemble_fn=_ab_then,
        fixed_bounds={"c": _C_WBL, "d": _D_WBL},
    ),
)

CURVE_FAMILIES: Mapping[str, CurveFamily] = MappingProxyType({f.name: f for f in _FAMILIES})
"""The learning-curve families payoff fits, by name (read-only)."""


# --- fitting -----------------------------------------------------------------------------


def _grid_solve(
    family: CurveFamily, x: FloatArray, y: FloatArray, w: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Solve the linear parameters in closed form at every grid point.

    Returns:
        The linear coefficients (grid points x 1 or 2) and the weighted SSE per point.
    """
    th = family.grid
    u, v = family.design_fn(x, th)
    sw = w[None, :]
    if v is None:
        suu = (sw * u * u).sum(1)
        suy = (sw * u * y).sum(1)
        a = suy / np.where(suu > 0, suu, np.inf)
        beta = a[:, None]
        fitted = beta[:, :1] * u
    else:
        suu = (sw * u * u).sum(1)
        svv = (sw * v * v).sum(1)
        suv = (sw * u * v).sum(1)
        suy = (sw * u * y).sum(1)
        svy = (sw * v * y).sum(1)
        det = suu * svv - suv * suv
        ok = np.abs(det) > 1e-12 * np.maximum(suu * svv, 1e-300)
        det = np.where(ok, det, np.inf)
        b0 = (svv * suy - suv * svy) / det
        b1 = (suu * svy - suv * suy) / det
        if family.nonneg_linear is not None:
            # A falling fit is replaced by the flat one (b = 0, a = weighted mean).
            neg = b1 < 0
            b1 = np.where(neg, 0.0, b1)
            b0 = np.where(neg, (w * y).sum() / w.sum(), b0)
        beta = np.stack([b0, b1], axis=1)
        fitted = beta[:, :1] * u + beta[:, 1:2] * v
    sse = (sw * (fitted - y[None, :]) ** 2).sum(1)
    sse = np.where(np.isfinite(sse), sse, np.inf)
    return beta, sse


def _bounds(
    family: CurveFamily, y: FloatArray, ceiling_max: float | None
) -> tuple[FloatArray, FloatArray]:
    span = max(float(np.ptp(y)), 1e-3 * max(1.0, float(np.abs(y).max())), 1e-9)
    top = float(y.max()) + 10.0 * span
    if ceiling_max is not None:
        top = max(min(top, ceiling_max), float(y.max()) + 1e-9)
    bottom = float(y.min()) - 10.0 * span
    lo, hi = [], []
    for name in family.param_names:
        if name in family.fixed_bounds:
            b = family.fixed_bounds[name]
        elif name == family.ceiling_param:
            b = (float(y.min()) - span, top)
        elif family.nonneg_linear is not None and name == "b":
            b = (0.0, 1e3 * span + 1e3 * max(abs(top), abs(bottom)))
        else:  # a starting level: a of mmf, b of janoschek
            b = (bottom - 1e3 * span, top)
        lo.append(b[0])
        hi.append(b[1])
    return np.array(lo), np.array(hi)


def _fit_arrays(
    family: CurveFamily,
    x: FloatArray,
    y: FloatArray,
    w: FloatArray,
    *,
    ceiling_max: float | None,
    n_restarts: int,
) -> tuple[FloatArray, float]:
    """Fit ``family`` to normalised ``x``; return its parameters and weighted SSE."""
    lo, hi = _bounds(family, y, ceiling_max)
    with np.errstate(all="ignore"):
        beta, sse = _grid_solve(family, x, y, w)
    order = np.argsort(sse)
    starts: list[FloatArray] = []
    for i in order:
        if not np.isfinite(sse[i]) or len(starts) >= n_restarts:
            break
        p0 = family.assemble_fn(family.grid[i], beta[i])
        p0 = np.clip(p0, lo, hi)
        # Restarts from distinct basins: skip grid points next to one already taken.
        if any(np.allclose(p0, s, rtol=0.2, atol=1e-6) for s in starts):
            continue
        starts.append(p0)
    if not starts:  # nothing finite on the grid: start in the middle of the bounds
        mid = np.where(np.isfinite(lo + hi), (lo + hi) / 2, 0.0)
        starts.append(np.clip(mid, lo, hi))

    sqrt_w = np.sqrt(w)

    def residual(p: FloatArray) -> FloatArray:
        r = sqrt_w * (family.predict_fn(x, p) - y)
        return np.where(np.isfinite(r), r, 1e6)

    best_p, best_sse = starts[0], math.inf
    with np.errstate(all="ignore"):
        for p0 in starts:
            r0 = residual(p0)
            sse0 = float(r0 @ r0)
            if sse0 < best_sse:
                best_p, best_sse = p0, sse0
            try:
                res = least_squares(
                    residual,
                    p0,
                    bounds=(lo, hi),
                    method="trf",
                    x_scale="jac",
                    max_nfev=40 * len(p0),
                    ftol=1e-8,
                    xtol=1e-8,
                )
            except (ValueError, np.linalg.LinAlgError):
                continue
            cost = 2.0 * float(res.cost)
            if np.all(np.isfinite(res.x)) and cost < best_sse:
                best_p, best_sse = res.x, cost
    return np.asarray(best_p, dtype=np.float64), best_sse


def fit_curve(
    sizes: ArrayLike,
    scores: ArrayLike,
    family: str | CurveFamily = "pow4",
    *,
    weights: ArrayLike | None = None,
    ceiling_max: float | None = None,
    n_restarts: int = 2,
) -> CurveFit:
    """Fit one learning-curve family to a rising curve by bounded least squares.

    The curve must rise with size (an error metric should be negated or turned into
    ``1 - error`` first); families are constrained to rising shapes.

    Args:
        sizes: Lever sizes (> 0), one per score.
        scores: Scores at those sizes.
        family: A name in ``CURVE_FAMILIES`` or a ``CurveFamily``.
        weights: Optional non-negative weight per point (e.g. the seed count).
        ceiling_max: Upper bound on the fitted ceiling (1.0 for accuracy), if any.
        n_restarts: How many distinct grid starting points to polish.

    Raises:
        ConfigError: unknown family, fewer points than parameters, non-positive or
            non-finite sizes, non-finite scores or mismatched lengths.
    """
    fam = _family(family)
    s = np.asarray(sizes, dtype=np.float64).ravel()
    y = np.asarray(scores, dtype=np.float64).ravel()
    w = np.ones_like(s) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if not (len(s) == len(y) == len(w)):
        raise ConfigError(
            f"sizes, scores and weights must have one entry each per point, got lengths "
            f"{len(s)}, {len(y)} and {len(w)}."
        )
    if not (np.all(np.isfinite(s)) and np.all(s > 0)):
        raise ConfigError(f"sizes must be finite and > 0, got {s.tolist()!r}.")
    if not np.all(np.isfinite(y)):
        raise ConfigError(f"scores must be finite, got {y.tolist()!r}.")
    if not (np.all(np.isfinite(w)) and np.all(w >= 0) and w.sum() > 0):
        raise ConfigError(f"weights must be finite, >= 0 and not all 0, got {w.tolist()!r}.")
    if len(np.unique(s)) < len(fam.param_names) - 1:
        raise ConfigError(
            f"family {fam.name!r} needs at least {len(fam.param_names) - 1} distinct sizes, "
            f"got {len(np.unique(s))}."
        )
    scale = float(s.max())
    params, sse = _fit_arrays(
        fam, s / scale, y, w, ceiling_max=ceiling_max, n_restarts=max(1, n_restarts)
    )
    return CurveFit(
        family=fam,
        params=tuple(float(p) for p in params),
        x_scale=scale,
        rmse=math.sqrt(sse / float(w.sum())),
        n_points=len(np.unique(s)),
    )


def _family(family: str | CurveFamily) -> CurveFamily:
    if isinstance(family, CurveFamily):
        return family
    if family not in CURVE_FAMILIES:
        raise ConfigError(
            f"unknown curve family {family!r}; expected one of {sorted(CURVE_FAMILIES)}."
        )
    return CURVE_FAMILIES[family]
