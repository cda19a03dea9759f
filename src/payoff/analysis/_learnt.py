"""A correction of the ensemble's forecast, learnt on real accuracy curves.

Parametric fits to a few early points tend to level off too soon: on the public LCDB
curves the median of the ensemble's fits under-predicts the score 8x further out by about
a point. The correction is a small gradient-boosted regression (absolute loss, trained by
scikit-learn in ``benchmarks/lcdb_forecast.py --learn``) from the curve's shape and the
family forecasts to ``truth - ensemble median``. Its trees ship as plain arrays in
``data/learnt_correction.npz`` and are evaluated here with NumPy, so forecasting needs
neither scikit-learn nor a pickle.

``features`` is the single definition of the model's inputs, used both to learn it and
to apply it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, fields
from importlib import resources
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
from numpy.typing import NDArray

from payoff.analysis._curves import FloatArray

if TYPE_CHECKING:
    from payoff.analysis._forecast import _Ensemble

# Doublings back from the largest measured size at which the curve's level is read.
_BACK = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0)

FEATURES: tuple[str, ...] = (
    "reach",  # log2(at / largest size)
    "last",
    "first",
    "n_points",
    "log2_size",
    "median_gain",  # ensemble median - last
    "spread",
    "rmse",
    "slope",
    *(f"gain_{i}" for i in range(4)),  # each family's forecast - last
    *(f"ceiling_{i}" for i in range(4)),  # each family's ceiling - last
    *(f"rise_{b}" for b in _BACK),  # last - level b doublings back
)


def features(ens: _Ensemble, at: FloatArray) -> FloatArray:
    """The model's inputs for a forecast of ``ens`` at each size of ``at`` (sizes x inputs),
    in the order of ``FEATURES``."""
    c = ens.curve
    u = np.log2(c.sizes)
    at = np.asarray(at, dtype=np.float64)
    members = ens.members(at)  # families x sizes
    ceilings = np.array([f.ceiling for f in ens.fits], dtype=np.float64)
    ceilings = np.clip(np.where(np.isfinite(ceilings), ceilings, ens.last), 0.0, 1.0)
    back = np.interp(u[-1] - np.array(_BACK), u, c.r)
    columns = [
        np.log2(np.maximum(at / c.sizes[-1], 1e-12)),
        ens.last,
        c.r[0],
        ens.n_points,
        u[-1],
        np.median(members, axis=0) - ens.last,
        np.ptp(members, axis=0),
        ens.rmse,
        ens.slope,
        *(members - ens.last),
        *(ceilings - ens.last),
        *(ens.last - back),
    ]
    return np.column_stack([np.broadcast_to(np.asarray(v, float), at.shape) for v in columns])


@dataclass(frozen=True, slots=True, eq=False)
class Trees:
    """Regression trees as flat arrays (all trees' nodes concatenated).

    Attributes:
        feature: Input index tested at each node (-1 at a leaf).
        threshold: Go left when the input is <= threshold (NaN goes ``missing_left``).
        missing_left: Whether a NaN input goes left.
        left: Index of the left child (into the flat arrays).
        right: Index of the right child.
        value: The leaf's contribution.
        roots: Index of each tree's root.
        baseline: Added to the sum of the leaves.
    """

    feature: NDArray[np.int32]
    threshold: FloatArray
    missing_left: NDArray[np.bool_]
    left: NDArray[np.int32]
    right: NDArray[np.int32]
    value: FloatArray
    roots: NDArray[np.int32]
    baseline: float

    def predict(self, x: FloatArray) -> FloatArray:
        """Sum of the leaves reached by each row of ``x`` plus the baseline."""
        x = np.asarray(x, dtype=np.float64)
        rows = np.arange(len(x))
        node = np.broadcast_to(self.roots[:, None], (len(self.roots), len(x))).copy()
        while True:
            f = self.feature[node]
            inner = f >= 0
            if not inner.any():
                break
            v = x[rows[None, :], np.maximum(f, 0)]
            go_left = np.where(np.isnan(v), self.missing_left[node], v <= self.threshold[node])
            node = np.where(inner, np.where(go_left, self.left[node], self.right[node]), node)
        return self.baseline + self.value[node].sum(0)

    def arrays(self, prefix: str) -> dict[str, NDArray[np.generic]]:
        """The trees as named arrays, for ``np.savez``."""
        return {f"{prefix}_{k}": np.asarray(getattr(self, k)) for k in _TREE_FIELDS}

    @classmethod
    def from_arrays(cls, npz: Mapping[str, NDArray[np.generic]], prefix: str) -> Trees:
        """The trees stored by ``arrays(prefix)``."""
        got = {k: npz[f"{prefix}_{k}"] for k in _TREE_FIELDS}
        return cls(**{**got, "baseline": float(got["baseline"])})  # type: ignore[arg-type]


_TREE_FIELDS = tuple(f.name for f in fields(Trees))


def trees_from_sklearn(model: object) -> Trees:
    """Flatten a fitted ``HistGradientBoostingRegressor`` (one output) into ``Trees``."""
    parts, roots, offset = [], [], 0
    for (predictor,) in model._predictors:  # type: ignore[attr-defined]
        nodes = predictor.nodes
        parts.append(nodes)
        roots.append(offset)
        offset += len(nodes)
    nodes = np.concatenate(parts)
    leaf = nodes["is_leaf"].astype(bool)
    shift = np.repeat(np.array(roots), [len(p) for p in parts])
    return Trees(
        feature=np.where(leaf, -1, nodes["feature_idx"]).astype(np.int32),
        threshold=nodes["num_threshold"].astype(np.float64),
        missing_left=nodes["missing_go_to_left"].astype(bool),
        left=np.where(leaf, 0, nodes["left"] + shift).astype(np.int32),
        right=np.where(leaf, 0, nodes["right"] + shift).astype(np.int32),
        value=np.where(leaf, nodes["value"], 0.0).astype(np.float64),
        roots=np.array(roots, dtype=np.int32),
        baseline=float(np.ravel(model._baseline_prediction)[0]),  # type: ignore[attr-defined]
    )


@dataclass(frozen=True, slots=True, eq=False)
class Correction:
    """The learnt correction: a point and a residual scale, both from ``features``.

    The point is ``median + point_trees``; the interval is ``point + z * scale`` with
    ``scale = high_trees - low_trees + floor`` (the trees of the 5% and 95% quantiles of
    ``truth - median``) and ``z`` the empirical quantiles of ``(truth - point) / scale``
    on the curves it was learnt on (split-conformal, as ``_Calibration``).
    """

    point: Trees
    low: Trees
    high: Trees
    floor: float
    tail_probs: tuple[float, ...]
    z_low: tuple[float, ...]
    z_high: tuple[float, ...]
    source: str

    def shift_and_scale(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        """The point's offset from the ensemble median, and the residual scale."""
        scale = np.maximum(self.high.predict(x) - self.low.predict(x), 0.0) + self.floor
        return self.point.predict(x), scale

    def save(self, path: str) -> None:
        """Store the correction at ``path`` (an ``.npz`` file)."""
        np.savez_compressed(
            path,
            **self.point.arrays("point"),
            **self.low.arrays("low"),
            **self.high.arrays("high"),
            floor=np.array(self.floor),
            tail_probs=np.array(self.tail_probs),
            z_low=np.array(self.z_low),
            z_high=np.array(self.z_high),
            source=np.array(self.source),
            features=np.array(FEATURES),
        )


def load_correction(source: BinaryIO | str) -> Correction | None:
    """Read a correction saved by ``Correction.save``; None if learnt on other inputs."""
    with np.load(source) as npz:
        if tuple(str(n) for n in npz["features"]) != FEATURES:
            return None
        return Correction(
            point=Trees.from_arrays(npz, "point"),
            low=Trees.from_arrays(npz, "low"),
            high=Trees.from_arrays(npz, "high"),
            floor=float(npz["floor"]),
            tail_probs=tuple(float(v) for v in npz["tail_probs"]),
            z_low=tuple(float(v) for v in npz["z_low"]),
            z_high=tuple(float(v) for v in npz["z_high"]),
            source=str(npz["source"]),
        )


@functools.cache
def learnt_correction() -> Correction | None:
    """The correction shipped in ``payoff/analysis/data``, or None if it is missing or was
    learnt on other inputs (``benchmarks/lcdb_forecast.py --learn`` rebuilds it)."""
    data = resources.files("payoff.analysis") / "data" / "learnt_correction.npz"
    if not data.is_file():
        return None
    with data.open("rb") as fh:
        return load_correction(fh)


def ramp(reach: FloatArray) -> FloatArray:
    """Weight of the correction by reach (log2 of the extrapolation ratio).

    Zero within the measured sizes, full from half a doubling out (LCDB's anchor step),
    so the forecast joins the fitted curve continuously at the largest measured size.
    """
    return np.clip(np.asarray(reach, dtype=np.float64) / 0.5, 0.0, 1.0)
