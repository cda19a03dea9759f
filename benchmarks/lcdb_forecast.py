"""Learning-curve forecasts on LCDB: payoff's forecaster against `last` and `pow4`.

The task of ``benchmarks/data/README.md`` (from the LCDB README): for every
(OpenML data set, learner) curve of ``score_valid`` with >= 8 anchors, observe the
anchors up to 1/16, 1/8 or 1/4 of the largest (>= 4 of them) and forecast the score at
the largest anchor. Printed per cutoff and method: absolute error in accuracy points
(x100: mean, median, 90th percentile), the mean signed error (forecast - truth), and the
coverage and mean width of the 90% interval.

Methods:
  payoff      ``forecast_curve`` as shipped. Its learnt correction and interval constants
              were learnt on this same public part (``--learn`` reproduces them), so these
              figures are in-sample.
  payoff-cv   the same forecaster, everything learnt on four fifths of the OpenML data
              sets (by id mod 5) and scored on the fifth left out, five times: the honest
              estimate on curves of data sets it never saw.
  ensemble-cv the median of the fits alone, without the learnt correction (its interval
              constants learnt the same way): what the correction adds.
  last        the last observed score (no interval).
  pow4        a - b (x + d)^-c by bounded least squares (payoff's ``fit_curve``, equal
              weights); the interval is the least-squares one (covariance from the
              Jacobian, delta method, Student t).
  learner-cv  payoff-cv's point trees given also which learner made the curve, which
              ``forecast_curve`` never knows: a reference for how much of the error the
              curve alone cannot explain, not a method.

The correction is learnt from every prefix of >= 4 anchors of every curve that stops at
least half a doubling before the curve's largest anchor, forecasting that largest anchor
(``Pair``); the forecasts scored above are a subset of those prefixes.

    .venv/bin/python benchmarks/lcdb_forecast.py [--max-curves N] [--workers 2] [--learn]
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from dataclasses import dataclass, replace
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from scipy.optimize import minimize
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.model_selection import GroupKFold

from payoff.analysis import fit_curve
from payoff.analysis._forecast import (
    _LCDB_CALIBRATION,
    _Calibration,
    _Ensemble,
    _fit_ensemble,
    _forecast_from,
    _prepare,
    _scale_from,
)
from payoff.analysis._learnt import Correction, features, learnt_correction, trees_from_sklearn

DATA = Path(__file__).parent / "data" / "lcdb_public_curves.csv.gz"
SHIPPED = Path(__file__).parents[1] / "src/payoff/analysis/data/learnt_correction.npz"
CUTOFFS = (1 / 16, 1 / 8, 1 / 4)
LEVEL = 0.9
TAIL_PROBS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25)
_show_warning = warnings.showwarning


def _quiet(message: Warning | str, *args: object, **kwargs: object) -> None:
    # scikit-learn's binning threads reset the global warning filters while others read
    # them (resetwarnings inside catch_warnings), so now and then every tree fit warns
    # that `delayed` lacks its config. A filter is wiped by that race; the hook is not.
    if "sklearn.utils.parallel.delayed" not in str(message):
        _show_warning(message, *args, **kwargs)  # type: ignore[arg-type]


warnings.showwarning = _quiet  # type: ignore[assignment]
MIN_REACH = 0.5  # doublings between a training prefix's last anchor and the target
FOLDS = 5  # cross-validation over OpenML data sets
# LCDB 1.0's learners, for the learner-aware reference row (not an input of the forecaster).
LEARNERS = (
    "SVC_linear",
    "SVC_poly",
    "SVC_rbf",
    "SVC_sigmoid",
    *(
        f"sklearn.{m}"
        for m in (
            "discriminant_analysis.LinearDiscriminantAnalysis",
            "discriminant_analysis.QuadraticDiscriminantAnalysis",
            "ensemble.ExtraTreesClassifier",
            "ensemble.GradientBoostingClassifier",
            "ensemble.RandomForestClassifier",
            "linear_model.LogisticRegression",
            "linear_model.PassiveAggressiveClassifier",
            "linear_model.Perceptron",
            "linear_model.RidgeClassifier",
            "linear_model.SGDClassifier",
            "naive_bayes.BernoulliNB",
            "naive_bayes.MultinomialNB",
            "neighbors.KNeighborsClassifier",
            "neural_network.MLPClassifier",
            "tree.DecisionTreeClassifier",
            "tree.ExtraTreeClassifier",
        )
    ),
)


Triple = tuple[float, float, float]  # a forecast's point, low and high


@dataclass(frozen=True, slots=True)
class Curve:
    openmlid: int
    learner: str
    sizes: np.ndarray
    scores: np.ndarray

    @property
    def learner_index(self) -> int:
        return LEARNERS.index(self.learner) if self.learner in LEARNERS else len(LEARNERS)


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
    pow4: Triple
    last: float
    forecast_s: float  # fitting and forecasting with the shipped forecaster
    shipped: Triple


@dataclass(frozen=True, slots=True)
class Pairs:
    """Training pairs for the correction: a prefix's inputs and where the curve ended."""

    openmlid: np.ndarray
    x: np.ndarray  # features(ensemble, largest anchor), one row a prefix
    median: np.ndarray  # the ensemble's median forecast
    truth: np.ndarray
    learner: np.ndarray  # index into LEARNERS (for the learner-aware reference row only)
    cutoff: np.ndarray  # the benchmark's cutoff this prefix is scored at, or 0

    def where(self, keep: np.ndarray) -> Pairs:
        return Pairs(*(getattr(self, f)[keep] for f in self.__dataclass_fields__))


def load_curves(max_curves: int | None) -> list[Curve]:
    frame = pd.read_csv(DATA)
    curves = [
        Curve(
            int(oid),
            str(learner),
            g["size_train"].to_numpy(dtype=float),
            g["score_valid"].to_numpy(dtype=float),
        )
        for (oid, learner), g in frame.sort_values("size_train").groupby(["openmlid", "learner"])
        if len(g) >= 8
    ]
    if max_curves is not None and max_curves < len(curves):
        keep = np.linspace(0, len(curves) - 1, max_curves).round().astype(int)
        curves = [curves[i] for i in keep]
    return curves


def pow4_baseline(x: np.ndarray, y: np.ndarray, at: float) -> Triple:
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


def _triple(ens: _Ensemble, at: float, cal: _Calibration, learnt: Correction | None) -> Triple:
    fc = _forecast_from(ens, at, LEVEL, cal, learnt)
    return fc.point, fc.low, fc.high


def work(curve: Curve) -> tuple[list[Outcome], Pairs]:
    """Every prefix of one curve: training pairs, and the benchmark's forecasts."""
    x, y = curve.sizes, curve.scores
    at = np.array([x[-1]])
    scored = {int((x <= c * x[-1]).sum()): c for c in CUTOFFS}
    outcomes, rows = [], []
    for k in range(4, len(x)):
        reach = math.log2(x[-1] / x[k - 1])
        cutoff = scored.get(k)
        if reach < MIN_REACH - 1e-9 and cutoff is None:
            break
        start = time.perf_counter()
        ens = _fit_ensemble(_prepare(x[:k], y[:k], higher_is_better=True, bounds=(0.0, 1.0)))
        if cutoff is not None:
            shipped = _triple(ens, x[-1], _LCDB_CALIBRATION, learnt_correction())
            elapsed = time.perf_counter() - start
            item = Item(curve.openmlid, curve.learner, cutoff, x[:k], y[:k], x[-1], y[-1])
            pow4 = pow4_baseline(x[:k], y[:k], x[-1])
            outcomes.append(Outcome(item, ens, pow4, float(y[k - 1]), elapsed, shipped))
        if reach >= MIN_REACH - 1e-9:
            median = float(np.median(ens.members(at)))
            rows.append((features(ens, at)[0], median, cutoff or 0.0))
    n = len(rows)
    pairs = Pairs(
        np.full(n, curve.openmlid),
        np.array([r[0] for r in rows]).reshape(n, -1),
        np.array([r[1] for r in rows]),
        np.full(n, y[-1]),
        np.full(n, curve.learner_index),
        np.array([r[2] for r in rows]),
    )
    return outcomes, pairs


# --- learning the correction -------------------------------------------------------------


def _trees(
    pairs: Pairs, loss: str, quantile: float | None = None
) -> HistGradientBoostingRegressor:
    kw = {"quantile": quantile} if quantile is not None else {}
    model = HistGradientBoostingRegressor(
        loss=loss,
        max_iter=400,
        learning_rate=0.05,
        max_leaf_nodes=15,
        min_samples_leaf=30,
        early_stopping=False,
        random_state=0,
        **kw,
    )
    return model.fit(pairs.x, pairs.truth - pairs.median)


def _fit_three(pairs: Pairs) -> list[HistGradientBoostingRegressor]:
    return [
        _trees(pairs, "absolute_error"),
        _trees(pairs, "quantile", 0.05),
        _trees(pairs, "quantile", 0.95),
    ]


FLOOR = 0.02  # added to the trees' 5-95% range: no interval collapses to a point


def learn_correction(pairs: Pairs, source: str) -> Correction:
    """Trees for the point and the 5% / 95% residual quantiles, learnt on ``pairs``; the
    z table from out-of-fold forecasts (4 folds over data sets), so it is not flattered
    by trees that have seen the curves they are scored on."""
    shift = np.empty(len(pairs.truth))
    scale = np.empty(len(pairs.truth))
    for train, held in GroupKFold(4).split(pairs.x, groups=pairs.openmlid):
        point, low, high = _fit_three(pairs.where(train))
        shift[held] = point.predict(pairs.x[held])
        scale[held] = np.maximum(high.predict(pairs.x[held]) - low.predict(pairs.x[held]), 0.0)
    point = np.clip(pairs.median + shift, 0.0, 1.0)
    z = (pairs.truth - point) / (scale + FLOOR)
    trees = [trees_from_sklearn(m) for m in _fit_three(pairs)]
    return Correction(
        *trees,
        floor=FLOOR,
        tail_probs=TAIL_PROBS,
        z_low=tuple(round(float(np.quantile(z, p)), 4) for p in TAIL_PROBS),
        z_high=tuple(round(float(np.quantile(z, 1.0 - p)), 4) for p in TAIL_PROBS),
        source=source,
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


def cross_validated(outcomes: list[Outcome], pairs: Pairs) -> tuple[list[Triple], list[Triple]]:
    """Learn everything on 4 of 5 groups of OpenML ids (``id % 5``), score the fifth.

    Returns the forecasts (point, low, high) with the learnt correction and without it
    (the fits alone), each fold's interval constants learnt once for both.
    """
    corrected: list[Triple] = [(math.nan,) * 3] * len(outcomes)
    plain = list(corrected)
    for fold in range(FOLDS):
        source = f"LCDB ids not {fold} mod {FOLDS}"
        cal = learn_calibration([o for o in outcomes if o.item.openmlid % FOLDS != fold], source)
        learnt = learn_correction(pairs.where(pairs.openmlid % FOLDS != fold), source)
        for i, o in enumerate(outcomes):
            if o.item.openmlid % FOLDS == fold:
                corrected[i] = _triple(o.ensemble, o.item.at, cal, learnt)
                plain[i] = _triple(o.ensemble, o.item.at, cal, None)
    return corrected, plain


def learner_aware_cv(pairs: Pairs) -> dict[float, np.ndarray]:
    """The point trees given also the learner (one-hot), cross-validated as payoff-cv.

    Not a forecaster payoff can ship (``forecast_curve`` sees a curve, not the learner
    that made it): a reference for how much the curve alone leaves unexplained.
    """
    onehot = np.eye(len(LEARNERS) + 1)[pairs.learner]
    aware = replace(pairs, x=np.hstack([pairs.x, onehot]))
    point = np.full(len(pairs.truth), np.nan)
    for fold in range(FOLDS):
        held = (pairs.openmlid % FOLDS == fold) & (pairs.cutoff > 0)
        model = _trees(aware.where(pairs.openmlid % FOLDS != fold), "absolute_error")
        point[held] = np.clip(pairs.median[held] + model.predict(aware.x[held]), 0.0, 1.0)
    return {c: np.c_[point, pairs.truth][pairs.cutoff == c] for c in CUTOFFS}


# --- report ------------------------------------------------------------------------------


def row(name: str, truth: np.ndarray, fc: np.ndarray) -> str:
    err = (fc[:, 0] - truth) * 100
    a = np.abs(err)
    text = (
        f"{name:11s} {a.mean():6.2f} {np.median(a):6.2f} {np.quantile(a, 0.9):6.2f} "
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
        help="learn the correction on all curves and write it into the package "
        f"({SHIPPED.name}), and print the ensemble's interval constants",
    )
    args = parser.parse_args()
    curves = load_curves(args.max_curves)
    start = time.perf_counter()
    with Pool(args.workers) as pool:
        done = pool.map(work, curves, chunksize=4)
    outcomes = [o for outs, _ in done for o in outs]
    pairs = Pairs(
        *(np.concatenate([getattr(p, f) for _, p in done]) for f in Pairs.__dataclass_fields__)
    )
    print(
        f"LCDB public part: {len(curves)} curves with >= 8 anchors, {len(outcomes)} forecasts, "
        f"{len(pairs.truth)} training prefixes; fitted in {time.perf_counter() - start:.0f} s "
        f"on {args.workers} processes"
    )
    source = "LCDB 1.0 public part (accuracy curves, 121 OpenML data sets)"
    if args.learn:
        learnt = learn_correction(pairs, source)
        learnt.save(str(SHIPPED))
        print(f"wrote the correction learnt on all {len(pairs.truth)} prefixes to {SHIPPED}")
    # The workers forecast with the correction shipped when the run started; a correction
    # learnt just now is scored afresh.
    shipped = [o.shipped for o in outcomes]
    if args.learn:
        shipped = [_triple(o.ensemble, o.item.at, _LCDB_CALIBRATION, learnt) for o in outcomes]
    cv, ens_cv = cross_validated(outcomes, pairs)
    aware = learner_aware_cv(pairs)
    times = np.array([o.forecast_s for o in outcomes]) * 1000
    print(
        f"payoff forecast time per curve (fits and forecast, shipped correction): median "
        f"{np.median(times):.0f} ms, 90th percentile {np.quantile(times, 0.9):.0f} ms"
    )
    print()
    header = (
        f"{'method':11s} {'mean':>6s} {'median':>6s} {'p90':>6s} {'signed':>7s} "
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
        print(row("payoff", truth, np.array([shipped[i] for i in sel])))
        print(row("payoff-cv", truth, np.array([cv[i] for i in sel])))
        print(row("ensemble-cv", truth, np.array([ens_cv[i] for i in sel])))
        print(row("last", truth, np.array([[outcomes[i].last] for i in sel])))
        print(row("pow4", truth, np.array([outcomes[i].pow4 for i in sel])))
        point, got = aware[cutoff].T
        print(row("learner-cv", got, point[:, None]))
        print()
    print("payoff: the correction and interval as shipped, learnt on this public part")
    print("(in-sample); payoff-cv and ensemble-cv learn on 4/5 of the OpenML data sets and")
    print("score the fifth left out, for each fifth. learner-cv: payoff-cv's point trees")
    print("told the learner too, which the forecaster is not (a reference, not a method).")
    if args.learn:
        cal = learn_calibration(outcomes, source)
        print("\nensemble constants learnt on all curves (paste into _LCDB_CALIBRATION):")
        print(f"    scale={cal.scale},")
        print(
            f"    tail_probs={cal.tail_probs},\n    z_low={cal.z_low},\n    z_high={cal.z_high},"
        )


if __name__ == "__main__":
    main()
