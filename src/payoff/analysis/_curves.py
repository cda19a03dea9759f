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


# Compared by identity: a family holds arrays and functions.
@dataclass(frozen=True, slots=True, eq=False)
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
    # The parameters the curve is linear in (solved in closed form) and the others.
    linear_names: tuple[str, ...] = field(repr=False)
    nonlinear_names: tuple[str, ...] = field(repr=False)
    nonlinear_bounds: tuple[tuple[float, float], ...] = field(repr=False)
    # Grid of the nonlinear parameters (one row per point) and the linear design there.
    grid: FloatArray = field(repr=False)
    design_fn: _Design = field(repr=False)

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

    def assemble(self, theta: FloatArray, beta: FloatArray) -> FloatArray:
        """Return the full parameter vector from nonlinear ``theta`` and linear ``beta``."""
        by_name = dict(zip(self.nonlinear_names, theta, strict=True))
        by_name.update(zip(self.linear_names, beta, strict=True))
        return np.array([by_name[n] for n in self.param_names], dtype=np.float64)


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


_C_POW = (0.02, 4.0)
_FAMILIES: tuple[CurveFamily, ...] = (
    CurveFamily(
        name="pow3",
        formula="a - b * x**-c",
        param_names=("a", "b", "c"),
        ceiling_param="a",
        predict_fn=_pow3,
        linear_names=("a", "b"),
        nonlinear_names=("c",),
        nonlinear_bounds=(_C_POW,),
        grid=_mesh(np.geomspace(0.03, 3.0, 24)),
        design_fn=_pow3_design,
    ),
    CurveFamily(
        name="pow4",
        formula="a - b * (x + d)**-c",
        param_names=("a", "b", "c", "d"),
        ceiling_param="a",
        predict_fn=_pow4,
        linear_names=("a", "b"),
        nonlinear_names=("c", "d"),
        nonlinear_bounds=(_C_POW, (0.0, 4.0)),
        grid=_mesh(np.geomspace(0.05, 3.0, 10), np.r_[0.0, np.geomspace(0.003, 2.0, 8)]),
        design_fn=_pow4_design,
    ),
    CurveFamily(
        name="mmf",
        formula="(a * b + c * x**d) / (b + x**d)",
        param_names=("a", "b", "c", "d"),
        ceiling_param="c",
        predict_fn=_mmf,
        linear_names=("a", "c"),
        nonlinear_names=("b", "d"),
        nonlinear_bounds=((1e-6, 1e4), (0.05, 5.0)),
        grid=_mesh(np.geomspace(1e-3, 30.0, 10), np.geomspace(0.15, 3.0, 8)),
        design_fn=_mmf_design,
    ),
    CurveFamily(
        name="weibull",
        formula="a - b * exp(-c * x**d)",
        param_names=("a", "b", "c", "d"),
        ceiling_param="a",
        predict_fn=_weibull,
        linear_names=("a", "b"),
        nonlinear_names=("c", "d"),
        nonlinear_bounds=((0.01, 1000.0), (0.05, 4.0)),
        grid=_mesh(np.geomspace(0.05, 300.0, 10), np.geomspace(0.1, 2.5, 8)),
        design_fn=_weibull_design,
    ),
    CurveFamily(
        name="exp3",
        formula="a - b * exp(-c * x)",
        param_names=("a", "b", "c"),
        ceiling_param="a",
        predict_fn=_exp3,
        linear_names=("a", "b"),
        nonlinear_names=("c",),
        nonlinear_bounds=((0.05, 1000.0),),
        grid=_mesh(np.geomspace(0.1, 500.0, 24)),
        design_fn=_exp3_design,
    ),
    CurveFamily(
        name="logpower",
        formula="a / (1 + (x / exp(b))**c)",
        param_names=("a", "b", "c"),
        ceiling_param="a",
        predict_fn=_logpower,
        linear_names=("a",),
        nonlinear_names=("b", "c"),
        # c < 0 keeps the curve rising towards a.
        nonlinear_bounds=((-12.0, 6.0), (-5.0, -0.01)),
        grid=_mesh(np.linspace(-7.0, 2.0, 10), -np.geomspace(0.1, 3.0, 8)),
        design_fn=_logpower_design,
    ),
    CurveFamily(
        name="janoschek",
        formula="a - (a - b) * exp(-c * x**d)",
        param_names=("a", "b", "c", "d"),
        ceiling_param="a",
        predict_fn=_janoschek,
        linear_names=("a", "b"),
        nonlinear_names=("c", "d"),
        nonlinear_bounds=((0.01, 1000.0), (0.05, 4.0)),
        grid=_mesh(np.geomspace(0.05, 300.0, 10), np.geomspace(0.1, 2.5, 8)),
        design_fn=_janoschek_design,
    ),
)

CURVE_FAMILIES: Mapping[str, CurveFamily] = MappingProxyType({f.name: f for f in _FAMILIES})
"""The learning-curve families payoff fits, by name (read-only)."""


# --- fitting -----------------------------------------------------------------------------


def _linear_bounds(
    family: CurveFamily, y: FloatArray, ceiling_max: float | None
) -> tuple[FloatArray, FloatArray]:
    """Bounds of the linear parameters, from the data and the metric's ceiling."""
    span = max(float(np.ptp(y)), 1e-3 * max(1.0, float(np.abs(y).max())), 1e-9)
    top = float(y.max()) + 10.0 * span
    if ceiling_max is not None:
        top = max(min(top, ceiling_max), float(y.max()))
    lo, hi = [], []
    for name in family.linear_names:
        if name == family.ceiling_param:
            lo.append(float(y.min()) - span)
            hi.append(top)
        elif name == "b" and family.name != "janoschek":
            lo.append(0.0)  # the "a - b g" families rise only with b >= 0
            hi.append(math.inf)
        else:  # a starting level (a of mmf, b of janoschek)
            lo.append(-math.inf)
            hi.append(top)
    return np.array(lo), np.array(hi)


def _solve_linear(
    u: FloatArray,
    v: FloatArray | None,
    y: FloatArray,
    w: FloatArray,
    lo: FloatArray,
    hi: FloatArray,
) -> tuple[FloatArray, FloatArray]:
    """Box-bounded weighted least squares in the 1 or 2 linear parameters, per grid row.

    The optimum of a convex quadratic over a box is either the free optimum or on an
    edge, where the 1-D optimum clipped to the box is exact; the best feasible of these
    candidates is the answer.

    Returns:
        The coefficients (rows x 1 or 2) and the fitted values (rows x points).
    """
    sw = w[None, :]
    suu = (sw * u * u).sum(1)
    suy = (sw * u * y).sum(1)
    if v is None:
        beta = np.clip(suy / np.where(suu > 0, suu, np.inf), lo[0], hi[0])[:, None]
        return beta, beta * u
    svv = (sw * v * v).sum(1)
    suv = (sw * u * v).sum(1)
    svy = (sw * v * y).sum(1)
    det = suu * svv - suv * suv
    det = np.where(np.abs(det) > 1e-13 * np.abs(suu * svv), det, np.nan)
    free0 = (svv * suy - suv * svy) / det
    free1 = (suu * svy - suv * suy) / det
    inside = (free0 >= lo[0]) & (free0 <= hi[0]) & (free1 >= lo[1]) & (free1 <= hi[1])
    cands = [(np.where(inside, free0, np.nan), np.where(inside, free1, np.nan))]
    for b0 in (lo[0], hi[0]):  # first coefficient on an edge, second solved
        if np.isfinite(b0):
            b1 = np.clip((svy - b0 * suv) / svv, lo[1], hi[1])
            cands.append((np.full_like(b1, b0), b1))
    for b1 in (lo[1], hi[1]):
        if np.isfinite(b1):
            b0 = np.clip((suy - b1 * suv) / suu, lo[0], hi[0])
            cands.append((b0, np.full_like(b0, b1)))
    best_sse = np.full(u.shape[0], np.inf)
    beta = np.zeros((u.shape[0], 2))
    for c0, c1 in cands:
        sse = (sw * (c0[:, None] * u + c1[:, None] * v - y) ** 2).sum(1)
        better = np.isfinite(sse) & (sse < best_sse)
        best_sse = np.where(better, sse, best_sse)
        beta[better] = np.stack([c0, c1], axis=1)[better]
    return beta, beta[:, :1] * u + beta[:, 1:2] * v


def _solve_linear_one(
    u: FloatArray,
    v: FloatArray | None,
    y: FloatArray,
    w: FloatArray,
    lo: FloatArray,
    hi: FloatArray,
) -> FloatArray:
    """``_solve_linear`` for one grid row, in scalar arithmetic (the polish's hot path)."""
    wu = w * u
    suu = float(wu @ u)
    suy = float(wu @ y)
    if v is None:
        a = suy / suu if suu > 0 else 0.0
        return np.array([min(max(a, lo[0]), hi[0])])
    wv = w * v
    svv = float(wv @ v)
    suv = float(wu @ v)
    svy = float(wv @ y)
    syy = float((w * y) @ y)

    def sse(b0: float, b1: float) -> float:
        return (
            syy - 2.0 * (b0 * suy + b1 * svy) + b0 * b0 * suu + 2.0 * b0 * b1 * suv + b1 * b1 * svv
        )

    det = suu * svv - suv * suv
    if abs(det) > 1e-13 * abs(suu * svv):
        b0 = (svv * suy - suv * svy) / det
        b1 = (suu * svy - suv * suy) / det
        if lo[0] <= b0 <= hi[0] and lo[1] <= b1 <= hi[1]:
            return np.array([b0, b1])
    best, best_sse = np.array([min(max(0.0, lo[0]), hi[0]), lo[1]]), math.inf
    for e0 in (lo[0], hi[0]):
        if math.isfinite(e0) and svv > 0:
            e1 = min(max((svy - e0 * suv) / svv, lo[1]), hi[1])
            if (c := sse(e0, e1)) < best_sse:
                best, best_sse = np.array([e0, e1]), c
    for e1 in (lo[1], hi[1]):
        if math.isfinite(e1) and suu > 0:
            e0 = min(max((suy - e1 * suv) / suu, lo[0]), hi[0])
            if (c := sse(e0, e1)) < best_sse:
                best, best_sse = np.array([e0, e1]), c
    return best


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
    lo, hi = _linear_bounds(family, y, ceiling_max)
    th_lo = np.array([b[0] for b in family.nonlinear_bounds])
    th_hi = np.array([b[1] for b in family.nonlinear_bounds])
    sqrt_w = np.sqrt(w)
    design = family.design_fn

    def solve(theta: FloatArray) -> tuple[FloatArray, FloatArray]:
        u, v = design(x, theta[None, :])
        beta = _solve_linear_one(u[0], None if v is None else v[0], y, w, lo, hi)
        fitted = beta[0] * u[0] if v is None else beta[0] * u[0] + beta[1] * v[0]
        return beta, fitted

    def residual(theta: FloatArray) -> FloatArray:
        r = sqrt_w * (solve(theta)[1] - y)
        return np.where(np.isfinite(r), r, 1e3)

    def jacobian(theta: FloatArray) -> FloatArray:
        # Forward differences, stepping inwards at an upper bound.
        r0 = residual(theta)
        jac = np.empty((len(r0), len(theta)))
        for k in range(len(theta)):
            h = 1e-6 * max(1.0, abs(theta[k]))
            if theta[k] + h > th_hi[k]:
                h = -h
            t = theta.copy()
            t[k] += h
            jac[:, k] = (residual(t) - r0) / h
        return jac

    with np.errstate(all="ignore"):
        _, fitted = _solve_linear(*design(x, family.grid), y, w, lo, hi)
        sse = (w[None, :] * (fitted - y[None, :]) ** 2).sum(1)
        sse = np.where(np.isfinite(sse), sse, np.inf)
        starts: list[FloatArray] = []
        for i in np.argsort(sse)[: 8 * n_restarts]:
            if len(starts) >= n_restarts or not np.isfinite(sse[i]):
                break
            th = family.grid[i]
            # Restarts come from distinct basins: skip neighbours of a start taken.
            if any(np.all(np.abs(th - s) <= 0.3 + 0.5 * np.abs(s)) for s in starts):
                continue
            starts.append(th)
        if not starts:
            starts.append(family.grid[len(family.grid) // 2])
        best_th, best_sse = starts[0], math.inf
        for th0 in starts:
            r0 = residual(th0)
            if float(r0 @ r0) < best_sse:
                best_th, best_sse = th0, float(r0 @ r0)
            try:
                res = least_squares(
                    residual,
                    np.clip(th0, th_lo, th_hi),
                    jac=jacobian,
                    bounds=(th_lo, th_hi),
                    method="trf",
                    max_nfev=20 * len(th0),
                    ftol=1e-6,
                    xtol=1e-6,
                )
            except (ValueError, np.linalg.LinAlgError):
                continue
            if np.all(np.isfinite(res.x)) and 2.0 * float(res.cost) < best_sse:
                best_th, best_sse = res.x, 2.0 * float(res.cost)
        beta = solve(np.asarray(best_th, dtype=np.float64))[0]
    return family.assemble(np.asarray(best_th), beta), best_sse


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

    The parameters the family is linear in are solved in closed form (variable
    projection) and the others by ``scipy.optimize.least_squares`` within bounds, from
    the ``n_restarts`` best distinct points of a grid. Families are constrained to
    rising shapes: turn an error metric into a rising score (``1 - error``, ``-error``)
    first.

    Args:
        sizes: Lever sizes (> 0), one per score.
        scores: Scores at those sizes.
        family: A name in ``CURVE_FAMILIES`` or a ``CurveFamily``.
        weights: Optional non-negative weight per point (e.g. the seed count).
        ceiling_max: Upper bound on the fitted ceiling (1.0 for accuracy), if any.
        n_restarts: How many distinct grid starting points to polish.

    Raises:
        ConfigError: unknown family, too few distinct sizes, non-positive or non-finite
            sizes, non-finite scores or weights, or mismatched lengths.
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
    n_distinct = len(np.unique(s))
    if n_distinct < 2:
        raise ConfigError(f"fitting a curve needs at least 2 distinct sizes, got {n_distinct}.")
    scale = float(s.max())
    params, sse = _fit_arrays(
        fam, s / scale, y, w / w.mean(), ceiling_max=ceiling_max, n_restarts=max(1, n_restarts)
    )
    return CurveFit(
        family=fam,
        params=tuple(float(p) for p in params),
        x_scale=scale,
        rmse=math.sqrt(sse / len(s)),
        n_points=n_distinct,
    )


def _family(family: str | CurveFamily) -> CurveFamily:
    if isinstance(family, CurveFamily):
        return family
    if family not in CURVE_FAMILIES:
        raise ConfigError(
            f"unknown curve family {family!r}; expected one of {sorted(CURVE_FAMILIES)}."
        )
    return CURVE_FAMILIES[family]
