"""Learning-curve forecasts on LCDB: payoff's forecaster against `last` and `pow4`.

The task of ``benchmarks/data/README.md`` (from the LCDB README): for every
(OpenML data set, learner) curve of ``score_valid`` with >= 8 anchors, observe the
anchors up to 1/16, 1/8 or 1/4 of the largest (>= 4 of them) and forecast the score at
the largest anchor. Printed per cutoff and method: absolute error in accuracy points
(x100: mean, median, 90th percentile), the mean signed error (forecast - truth), and the
coverage and mean width of the 90% interval.

Methods:
  payoff      ``forecast_curve`` as shipped. Its interval constants were learnt on this
              same public part (``--learn`` reproduces them), so its coverage here is
              in-sample; the ensemble's families and fit weights were also chosen on it.
  payoff-cv   the same forecasts, the interval constants learnt by 2-fold
              cross-validation over OpenML data sets (even ids -> odd ids and back): the
              honest estimate of coverage on curves the constants never saw.
  ref         the reference-curve path (``_LCDB_REF_CALIBRATION``, off by default in
              ``forecast_curve``): nearest LCDB reference curves blended with the
              ensemble, each curve's own OpenML data set left out of the references;
              its constants are learnt on this same part (in-sample).
  ref-cv      the same, its blend and interval learnt on one half of the OpenML ids
              (even / odd) with references from that half only, scored on the other.
  last        the last observed score (no interval).
  pow4        a - b (x + d)^-c by bounded least squares (payoff's ``fit_curve``, equal
              weights); the interval is the least-squares one (covariance from the
              Jacobian, delta method, Student t).

    .venv/bin/python benchmarks/lcdb_forecast.py [--max-curves N] [--workers 2] [--learn]
        [--write-reference]
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, replace
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from scipy.optimize import minimize

from payoff.analysis import fit_curve
from payoff.analysis._forecast import (
    _DEFAULT_REF,
    _LCDB_CALIBRATION,
    _LCDB_REF_CALIBRATION,
    _blend_from,
    _Calibration,
    _Ensemble,
    _fit_ensemble,
    _forecast_from,
    _prepare,
    _ref_scale_from,
    _RefCalibration,
    _scale_from,
)
from payoff.analysis._reference import (
    Neighbours,
    build_reference_curves,
    neighbour_forecast,
    reference_curves,
    save_reference_curves,
)

DATA = Path(__file__).parent / "data" / "lcdb_public_curves.csv.gz"
CUTOFFS = (1 / 16, 1 / 8, 1 / 4)
LEVEL = 0.9


@dataclass(frozen=True, slots=True)
class Item:
    openmlid: int
    learner: str
    cutoff: float
    sizes: np.ndarray
    scores: np.ndarray
    at: float
    target: float


@dataclass(frozen=True, slots=True)
class Outcome:
    item: Item
    ensemble: _Ensemble
    payoff: tuple[float, float, float]
    pow4: tuple[float, float, float]
    last: float
    forecast_s: float
    ref: tuple[float, float, float]  # the reference path, shipped constants
    # Neighbours among the references of other data sets: all of them, those of the
    # same id parity (to learn a fold on), those of the other parity (to score a fold).
    nb_all: Neighbours
    nb_same: Neighbours
    nb_other: Neighbours


def load_items(max_curves: int | None) -> tuple[list[Item], int]:
    frame = pd.read_csv(DATA)
    curves = [
        (key, g.sort_values("size_train"))
        for key, g in frame.groupby(["openmlid", "learner"])
        if len(g) >= 8
    ]
    if max_curves is not None and max_curves < len(curves):
        keep = np.linspace(0, len(curves) - 1, max_curves).round().astype(int)
        curves = [curves[i] for i in keep]
    items = []
    for (openmlid, learner), g in curves:
        x = g["size_train"].to_numpy(dtype=float)
        y = g["score_valid"].to_numpy(dtype=float)
        for cutoff in CUTOFFS:
            seen = x <= cutoff * x[-1]
            if seen.sum() >= 4:
                items.append(
                    Item(int(openmlid), str(learner), cutoff, x[seen], y[seen], x[-1], y[-1])
                )
    return items, len(curves)


def pow4_baseline(x: np.ndarray, y: np.ndarray, at: float) -> tuple[float, float, float]:
    """Point and least-squares 90% interval of a pow4 fit."""
    fit = fit_curve(x, y, "pow4", ceiling_max=1.0)
    p = np.array(fit.params)
    xs = np.r_[x, at] / fit.x_scale

    def f(q: np.ndarray) -> np.ndarray:
        return fit.family.predict(xs, q)

    base = f(p)
    jac = np.empty((len(xs), len(p)))
    for k in range(len(p)):
        h = 1e-6 * max(1.0, abs(p[k]))
        q = p.copy()
        q[k] += h
        jac[:, k] = (f(q) - base) / h
    point = float(np.clip(base[-1], 0.0, 1.0))
    dof = len(x) - len(p)
    if dof <= 0:
        return point, math.nan, math.nan
    sigma2 = float(np.sum((base[:-1] - y) ** 2)) / dof
    with np.errstate(all="ignore"):
        cov = sigma2 * np.linalg.pinv(jac[:-1].T @ jac[:-1])
        half = float(stats.t.ppf(0.5 + LEVEL / 2, dof)) * math.sqrt(
            max(float(jac[-1] @ cov @ jac[-1]), 0.0)
        )
    if not math.isfinite(half):
        return point, 0.0, 1.0
    return point, max(point - half, 0.0), min(point + half, 1.0)


def work(item: Item) -> Outcome:
    refs = reference_curves()
    own = refs.openml_ids == item.openmlid
    same = refs.openml_ids % 2 == item.openmlid % 2
    start = time.perf_counter()
    # What forecast_curve does, with the curve's own data set left out of the
    # references; the ensemble is kept for the cross-validation.
    ensemble = _fit_ensemble(
        _prepare(item.sizes, item.scores, higher_is_better=True, bounds=(0.0, 1.0))
    )
    fc = _forecast_from(
        ensemble, item.at, LEVEL, _LCDB_CALIBRATION, _DEFAULT_REF, refs=refs.where(~own)
    )
    elapsed = time.perf_counter() - start
    fr = _forecast_from(
        ensemble, item.at, LEVEL, _LCDB_CALIBRATION, _LCDB_REF_CALIBRATION, refs=refs.where(~own)
    )
    at = np.array([item.at])
    r = ensemble.curve.r

    def nb(keep: np.ndarray) -> Neighbours:
        return neighbour_forecast(refs.where(keep), ensemble.curve.sizes, r, at)

    return Outcome(
        item,
        ensemble,
        (fc.point, fc.low, fc.high),
        pow4_baseline(item.sizes, item.scores, item.at),
        float(item.scores[-1]),
        elapsed,
        (fr.point, fr.low, fr.high),
        nb(~own),
        nb(same & ~own),
        nb(~same),
    )


# --- learning the interval constants -----------------------------------------------------


def _features(outcomes: list[Outcome]) -> dict[str, np.ndarray]:
    rows = []
    for o in outcomes:
        ens = o.ensemble
        members = ens.members(np.array([o.item.at]))[:, 0]
        rows.append(
            (
                float(np.median(members)),
                float(np.ptp(members)),
                ens.last,
                ens.rmse,
                ens.slope,
                o.item.at / o.item.sizes[-1],
                ens.n_points,
                ens.curve.unit,
                bool(ens.flags),
                o.item.target,
            )
        )
    cols = (
        "point",
        "spread",
        "last",
        "rmse",
        "slope",
        "ratio",
        "n_points",
        "unit",
        "flagged",
        "truth",
    )
    arr = list(zip(*rows, strict=True))
    return {c: np.array(a) for c, a in zip(cols, arr, strict=True)}


def learn_calibration(outcomes: list[Outcome], source: str) -> _Calibration:
    """Learn the scale by the 90% interval score, then the quantile table (conformal).

    Curves flagged flat or noisy are left out: the forecaster widens their interval by
    a fixed factor on top of what the clean curves need.
    """
    f = _features([o for o in outcomes if not o.ensemble.flags])
    truth = f["truth"]

    def calibration(v: np.ndarray) -> _Calibration:
        return replace(
            _LCDB_CALIBRATION,
            scale=tuple(float(abs(c)) for c in v[:7]),  # type: ignore[arg-type]
            source=source,
        )

    def scale(cal: _Calibration) -> np.ndarray:
        return _scale_from(
            cal,
            unit=f["unit"],
            point=f["point"],
            last=f["last"],
            spread=f["spread"],
            rmse=f["rmse"],
            slope=f["slope"],
            ratio=f["ratio"],
            n_points=f["n_points"],
            flagged=f["flagged"],
        )

    alpha = 1.0 - LEVEL

    def interval_score(v: np.ndarray) -> float:
        s = scale(calibration(v))
        low = np.clip(f["point"] - abs(v[7]) * s, 0.0, 1.0)
        high = np.clip(f["point"] + abs(v[8]) * s, 0.0, 1.0)
        miss = np.maximum(low - truth, 0.0) + np.maximum(truth - high, 0.0)
        return float(np.mean(high - low + 2.0 / alpha * miss))

    # A fixed start (not the shipped constants) keeps --learn reproducible.
    v = np.array([0.01, 0.5, 0.3, 2.0, 0.3, 0.3, 0.3, 1.0, 2.0])
    for _ in range(3):
        v = minimize(
            interval_score,
            v,
            method="Nelder-Mead",
            options={"maxiter": 4000, "xatol": 1e-5, "fatol": 1e-8},
        ).x
    cal = calibration(v)
    z = (truth - f["point"]) / scale(cal)
    probs = cal.tail_probs
    return replace(
        cal,
        z_low=tuple(round(float(np.quantile(z, p)), 4) for p in probs),
        z_high=tuple(round(float(np.quantile(z, 1.0 - p)), 4) for p in probs),
        scale=tuple(round(c, 4) for c in cal.scale),  # type: ignore[arg-type]
    )


def _ref_features(outcomes: list[Outcome], which: str) -> dict[str, np.ndarray]:
    """Features of the reference path, with the neighbours ``nb_<which>``."""
    f = _features(outcomes)
    nbs = [getattr(o, f"nb_{which}") for o in outcomes]
    knn = np.array([float(nb.point[0]) for nb in nbs])
    ok = np.isfinite(knn)
    f["ok"] = ok
    f["knn"] = np.where(ok, knn, f["point"])
    f["knn_spread"] = np.array(
        [float(nb.spread[0]) if np.isfinite(nb.spread[0]) else 0.0 for nb in nbs]
    )
    return f


def learn_ref_calibration(outcomes: list[Outcome], which: str, source: str) -> _RefCalibration:
    """Learn the blend (smoothed absolute error), the scale (90% interval score), then
    the quantile table (conformal), on curves with neighbours ``nb_<which>``."""
    f = _ref_features(outcomes, which)
    keep = f["ok"]
    f = {k: v[keep] for k, v in f.items()}
    truth = f["truth"]
    base = _LCDB_REF_CALIBRATION
    feats = {"par": f["point"], "knn": f["knn"], "last": f["last"], "slope": f["slope"]}

    def point(b: np.ndarray) -> np.ndarray:
        rc = replace(base, blend=tuple(float(x) for x in b))
        return np.clip(_blend_from(rc, **feats, ratio=f["ratio"]), 0.0, 1.0)

    def abs_loss(b: np.ndarray) -> float:
        return float(np.mean(np.sqrt((point(b) - truth) ** 2 + 1e-6)))

    b = minimize(abs_loss, np.zeros(6), method="L-BFGS-B").x
    p = point(b)

    def scale(v: np.ndarray) -> np.ndarray:
        rc = replace(base, scale=tuple(float(abs(x)) for x in v[:9]))
        return _ref_scale_from(
            rc,
            **feats,
            knn_spread=f["knn_spread"],
            spread=f["spread"],
            rmse=f["rmse"],
            ratio=f["ratio"],
            n_points=f["n_points"],
            flagged=f["flagged"],
        )

    alpha = 1.0 - LEVEL

    def interval_score(v: np.ndarray) -> float:
        s = scale(v)
        low = np.clip(p - abs(v[9]) * s, 0.0, 1.0)
        high = np.clip(p + abs(v[10]) * s, 0.0, 1.0)
        miss = np.maximum(low - truth, 0.0) + np.maximum(truth - high, 0.0)
        return float(np.mean(high - low + 2.0 / alpha * miss))

    v = np.array([0.01, 0.5, 0.5, 0.3, 0.3, 0.1, 1.0, 0.5, 0.5, 1.0, 1.0])
    for _ in range(2):
        v = minimize(
            interval_score, v, method="Nelder-Mead", options={"maxiter": 3000, "fatol": 1e-8}
        ).x
    z = (truth - p) / scale(v)
    probs = base.tail_probs
    return replace(
        base,
        blend=tuple(round(float(x), 5) for x in b),
        scale=tuple(round(float(abs(x)), 5) for x in v[:9]),
        z_low=tuple(round(float(np.quantile(z, q)), 4) for q in probs),
        z_high=tuple(round(float(np.quantile(z, 1.0 - q)), 4) for q in probs),
        source=source,
    )


def cross_validated(
    outcomes: list[Outcome], *, references: bool
) -> list[tuple[float, float, float]]:
    """Learn everything on one parity of OpenML ids (references included), score the other."""
    out: list[tuple[float, float, float] | None] = [None] * len(outcomes)
    for parity in (0, 1):
        train = [o for o in outcomes if o.item.openmlid % 2 == parity]
        cal = learn_calibration(train, f"LCDB ids with parity {parity}")
        rcal = (
            learn_ref_calibration(train, "same", f"LCDB ids with parity {parity}")
            if references
            else None
        )
        for i, o in enumerate(outcomes):
            if o.item.openmlid % 2 != parity:
                fc = _forecast_from(o.ensemble, o.item.at, LEVEL, cal, rcal, neighbours=o.nb_other)
                out[i] = (fc.point, fc.low, fc.high)
    return [o for o in out if o is not None]


# --- report ------------------------------------------------------------------------------


def row(name: str, truth: np.ndarray, fc: np.ndarray) -> str:
    err = (fc[:, 0] - truth) * 100
    a = np.abs(err)
    text = (
        f"{name:10s} {a.mean():6.2f} {np.median(a):6.2f} {np.quantile(a, 0.9):6.2f} "
        f"{err.mean():+7.2f}"
    )
    if fc.shape[1] == 3 and np.all(np.isfinite(fc[:, 1:])):
        inside = (truth >= fc[:, 1]) & (truth <= fc[:, 2])
        width = (fc[:, 2] - fc[:, 1]) * 100
        text += f" {inside.mean():8.3f} {width.mean():7.2f}"
    elif fc.shape[1] == 3:
        ok = np.isfinite(fc[:, 1])
        inside = (truth[ok] >= fc[ok, 1]) & (truth[ok] <= fc[ok, 2])
        width = (fc[ok, 2] - fc[ok, 1]) * 100
        text += f" {inside.mean():8.3f} {width.mean():7.2f}  ({(~ok).sum()} n/a: 4 points)"
    else:
        text += f" {'n/a':>8s} {'n/a':>7s}"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--max-curves",
        type=int,
        default=None,
        help="use N curves spread over the table (quick run)",
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--learn",
        action="store_true",
        help="also learn the interval constants on all curves and print them",
    )
    parser.add_argument(
        "--write-reference",
        action="store_true",
        help="rebuild src/payoff/analysis/data/reference_curves.npz from the public curves",
    )
    args = parser.parse_args()
    if args.write_reference:
        frame = pd.read_csv(DATA)
        curves = [
            (int(oid), g["size_train"].to_numpy(float), g["score_valid"].to_numpy(float))
            for (oid, _), g in frame.sort_values("size_train").groupby(["openmlid", "learner"])
            if len(g) >= 4
        ]
        out = Path(__file__).parents[1] / "src/payoff/analysis/data/reference_curves.npz"
        save_reference_curves(build_reference_curves(curves), str(out))
        print(f"wrote {len(curves)} reference curves to {out}")
        return

    items, n_curves = load_items(args.max_curves)
    print(f"LCDB public part: {n_curves} curves with >= 8 anchors, {len(items)} forecasts")
    start = time.perf_counter()
    with Pool(args.workers) as pool:
        outcomes = pool.map(work, items, chunksize=8)
    print(f"fitted in {time.perf_counter() - start:.0f} s on {args.workers} processes")
    cv = cross_validated(outcomes, references=_DEFAULT_REF is not None)
    ref_cv = cross_validated(outcomes, references=True)
    times = np.array([o.forecast_s for o in outcomes]) * 1000
    print(
        f"payoff forecast time per curve: median {np.median(times):.0f} ms, "
        f"90th percentile {np.quantile(times, 0.9):.0f} ms"
    )
    print()
    header = (
        f"{'method':10s} {'mean':>6s} {'median':>6s} {'p90':>6s} {'signed':>7s} "
        f"{'coverage':>8s} {'width':>7s}"
    )
    for cutoff in CUTOFFS:
        sel = [i for i, o in enumerate(outcomes) if o.item.cutoff == cutoff]
        n_flagged = sum(bool(outcomes[i].ensemble.flags) for i in sel)
        truth = np.array([outcomes[i].item.target for i in sel])
        print(
            f"cutoff 1/{round(1 / cutoff)}: {len(sel)} curves ({n_flagged} flagged flat or "
            f"noisy); absolute error in accuracy points (x100), 90% intervals"
        )
        print(header)
        print(row("payoff", truth, np.array([outcomes[i].payoff for i in sel])))
        print(row("payoff-cv", truth, np.array([cv[i] for i in sel])))
        print(row("ref", truth, np.array([outcomes[i].ref for i in sel])))
        print(row("ref-cv", truth, np.array([ref_cv[i] for i in sel])))
        print(row("last", truth, np.array([[outcomes[i].last] for i in sel])))
        print(row("pow4", truth, np.array([outcomes[i].pow4 for i in sel])))
        print()
    print("payoff's interval constants were learnt on this public part (in-sample);")
    print("payoff-cv learns them on even OpenML ids and scores odd ones, and back.")
    print("ref: the reference-curve path (off by default) with its shipped constants, each")
    print("curve's own data set left out of the references; ref-cv: the same, learnt and")
    print("given references from one half of the OpenML ids, scored on the other half.")
    if args.learn:
        cal = learn_calibration(
            outcomes, "LCDB 1.0 public part (accuracy curves, 121 OpenML data sets)"
        )
        print("\nconstants learnt on all curves (paste into _LCDB_CALIBRATION):")
        print(f"    scale={cal.scale},")
        print(
            f"    tail_probs={cal.tail_probs},\n    z_low={cal.z_low},\n    z_high={cal.z_high},"
        )
        rcal = learn_ref_calibration(
            outcomes, "all", "LCDB 1.0 public part (121 OpenML data sets)"
        )
        print("\nreference-path constants (paste into _LCDB_REF_CALIBRATION):")
        print(f"    blend={rcal.blend},\n    scale={rcal.scale},")
        print(f"    z_low={rcal.z_low},\n    z_high={rcal.z_high},")


if __name__ == "__main__":
    main()
