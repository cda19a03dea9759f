"""Reference learning curves shipped with payoff, and nearest-neighbour forecasts from them.

The references are accuracy curves of the public part of the Learning Curve Database
(LCDB 1.0, Mohr, Viering, Loog, van Rijn et al., 2022, CC BY 4.0; see ``data/README.md``),
resampled on a grid of log2 sizes (``GRID_START`` in steps of ``GRID_STEP``) and stored in
``data/reference_curves.npz`` as 16-bit fractions.

A forecast from them aligns the last measured size of a curve with a grid size of every
reference curve (a *pivot*, within ``_MAX_SHIFT`` doublings of the measured size), scores
how well the reference's shape over the measured span matches the measured rises, and
adds the rises of the ``k`` closest references from their pivot to the forecast size to
the last measured score.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources

import numpy as np
from numpy.typing import ArrayLike, NDArray

from payoff.analysis._curves import FloatArray

GRID_START = 4.0  # log2 of the smallest grid size (16, LCDB's first anchor)
GRID_STEP = 0.25
_N_GRID = 72  # up to 2^21.75
_MISSING = 65535  # uint16 code for "no value" (outside the reference's sizes)
_SCALE = 65534.0

# Nearest-neighbour settings, chosen on the public LCDB part (leave-data-set-out).
_K = 20
_LEVEL_WEIGHT = 0.3  # distance per unit of |last score - reference score at the pivot|
_SHIFT_WEIGHT = 0.02  # distance per doubling between the pivot and the last size
_TAIL_DOUBLINGS = 2.0  # shape mismatch weights fall by e every 2 doublings back
_MAX_SHIFT = 3.0

IntArray = NDArray[np.int64]


@dataclass(frozen=True, slots=True, eq=False)
class ReferenceCurves:
    """Accuracy curves on a common grid of log2 sizes.

    Attributes:
        openml_ids: The OpenML data set of each curve (for leave-data-set-out checks).
        values: Scores in [0, 1], one row per curve, NaN outside the curve's sizes.
    """

    openml_ids: IntArray
    values: FloatArray

    def __len__(self) -> int:
        return len(self.openml_ids)

    def excluding(self, openml_ids: Iterable[int]) -> ReferenceCurves:
        """Return the curves whose data set is not among ``openml_ids``."""
        keep = ~np.isin(self.openml_ids, np.fromiter(openml_ids, dtype=np.int64))
        return ReferenceCurves(self.openml_ids[keep], self.values[keep])

    def where(self, keep: ArrayLike) -> ReferenceCurves:
        """Return the curves where the boolean mask ``keep`` is true."""
        mask = np.asarray(keep, dtype=bool)
        return ReferenceCurves(self.openml_ids[mask], self.values[mask])


def build_reference_curves(curves: Iterable[tuple[int, ArrayLike, ArrayLike]]) -> ReferenceCurves:
    """Resample (openml id, sizes, scores) curves on the grid.

    The grid size just past a curve's largest size holds its last score, so that a
    forecast reaching the curve's end can still interpolate there.
    """
    grid = GRID_START + GRID_STEP * np.arange(_N_GRID)
    ids, rows = [], []
    for openml_id, sizes, scores in curves:
        u = np.log2(np.asarray(sizes, dtype=np.float64))
        y = np.asarray(scores, dtype=np.float64)
        row = np.full(_N_GRID, np.nan)
        inside = (grid >= u[0] - 1e-9) & (grid <= u[-1] + 1e-9)
        row[inside] = np.interp(grid[inside], u, y)
        after = np.nonzero(grid > u[-1] + 1e-9)[0]
        if len(after):
            row[after[0]] = y[-1]
        ids.append(int(openml_id))
        rows.append(row)
    return ReferenceCurves(np.array(ids, dtype=np.int64), np.array(rows))


def save_reference_curves(ref: ReferenceCurves, path: str) -> None:
    """Store ``ref`` compactly (16-bit scores) at ``path`` (an ``.npz`` file)."""
    codes = np.where(np.isfinite(ref.values), np.round(ref.values * _SCALE), _MISSING)
    np.savez_compressed(
        path, openml_ids=ref.openml_ids.astype(np.int32), values=codes.astype(np.uint16)
    )


@functools.cache
def reference_curves() -> ReferenceCurves:
    """Load the reference curves shipped in ``payoff/analysis/data``."""
    data = resources.files("payoff.analysis") / "data" / "reference_curves.npz"
    with data.open("rb") as fh, np.load(fh) as npz:
        codes = npz["values"]
        values = np.where(codes == _MISSING, np.nan, codes / _SCALE)
        return ReferenceCurves(npz["openml_ids"].astype(np.int64), values)


@dataclass(frozen=True, slots=True)
class Neighbours:
    """Forecasts of the nearest reference curves at several sizes.

    Attributes:
        point: Median of the neighbours' forecasts per size (NaN where none reach it).
        spread: Standard deviation of the neighbours' forecasts per size.
    """

    point: FloatArray
    spread: FloatArray


def _at_positions(values: FloatArray, pos: FloatArray) -> FloatArray:
    """Interpolate rows of ``values`` at fractional grid indices ``pos`` (any shape)."""
    i0 = np.floor(pos).astype(np.int64)
    frac = pos - i0
    lo = np.clip(i0, 0, _N_GRID - 1)
    hi = np.clip(i0 + 1, 0, _N_GRID - 1)
    exact = frac < 1e-9
    out = np.where(exact, values[:, lo], values[:, lo] * (1.0 - frac) + values[:, hi] * frac)
    outside = (i0 < 0) | (i0 > _N_GRID - 1) | (~exact & (i0 + 1 > _N_GRID - 1))
    return np.where(outside, np.nan, out)


def neighbour_forecast(
    ref: ReferenceCurves, sizes: FloatArray, scores: FloatArray, at: FloatArray, *, k: int = _K
) -> Neighbours:
    """Forecast an accuracy curve at sizes ``at`` from its ``k`` nearest references."""
    nan = np.full(len(at), np.nan)
    if len(ref) == 0 or len(sizes) < 2:
        return Neighbours(nan, nan)
    u = np.log2(sizes)
    last = float(scores[-1])
    back = u - u[-1]
    ahead = np.log2(np.maximum(at, 1e-300)) - u[-1]
    grid = GRID_START + GRID_STEP * np.arange(_N_GRID)
    pivots = np.nonzero(np.abs(grid - u[-1]) <= _MAX_SHIFT + 1e-9)[0]
    if len(pivots) == 0:
        pivots = np.array([int(np.argmin(np.abs(grid - u[-1])))])
    seen = _at_positions(ref.values, pivots[:, None] + back[None, :] / GRID_STEP)
    at_pivot = seen[..., -1]
    w = np.exp(back / _TAIL_DOUBLINGS)
    mismatch = (scores - last)[None, None, :] - (seen - at_pivot[..., None])
    dist = (
        np.sqrt((mismatch**2 * w).sum(-1) / w.sum())
        + _LEVEL_WEIGHT * np.abs(last - at_pivot)
        + _SHIFT_WEIGHT * np.abs(grid[pivots] - u[-1])[None, :]
    )
    dist = np.where(np.isfinite(dist), dist, np.inf)
    best = np.argmin(dist, axis=1)
    d_best = dist[np.arange(len(dist)), best]
    order = np.argsort(d_best, kind="stable")
    order = order[np.isfinite(d_best[order])]
    if len(order) == 0:
        return Neighbours(nan, nan)
    piv = pivots[best[order]].astype(np.float64)
    # Each candidate's score at every forecast size (candidates x sizes).
    pos = piv[:, None] + ahead[None, :] / GRID_STEP
    i0 = np.floor(pos).astype(np.int64)
    frac = pos - i0
    rows = ref.values[order][:, None, :]
    lo = np.take_along_axis(rows[:, 0, :], np.clip(i0, 0, _N_GRID - 1), axis=1)
    hi = np.take_along_axis(rows[:, 0, :], np.clip(i0 + 1, 0, _N_GRID - 1), axis=1)
    future = np.where(frac < 1e-9, lo, lo * (1.0 - frac) + hi * frac)
    future = np.where((i0 < 0) | (i0 + (frac >= 1e-9) > _N_GRID - 1), np.nan, future)
    preds = np.clip(last + future - at_pivot[order, best[order]][:, None], 0.0, 1.0)
    ok = np.isfinite(preds)
    # The first k candidates that reach each size.
    take = ok & (np.cumsum(ok, axis=0) <= k)
    n_take = take.sum(0)
    masked = np.where(take, preds, np.nan)
    with np.errstate(all="ignore"):
        enough = n_take >= max(3, k // 4)
        point = np.where(enough, _nanmedian(masked), np.nan)
        spread = np.where(enough, _nanstd(masked), np.nan)
    return Neighbours(point, spread)


def _nanmedian(a: FloatArray) -> FloatArray:
    s = np.sort(a, axis=0)  # NaN last
    n = np.isfinite(a).sum(0)
    idx = np.arange(a.shape[1])
    lo = s[np.maximum((n - 1) // 2, 0), idx]
    hi = s[np.maximum(n // 2, 0), idx]
    return np.where(n > 0, 0.5 * (lo + hi), np.nan)


def _nanstd(a: FloatArray) -> FloatArray:
    n = np.isfinite(a).sum(0)
    mean = np.where(n > 0, np.nansum(a, axis=0) / np.maximum(n, 1), np.nan)
    dev = np.where(np.isfinite(a), a - mean, 0.0)
    return np.sqrt((dev**2).sum(0) / np.maximum(n, 1))
