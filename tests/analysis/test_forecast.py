"""Forecasts with calibrated intervals, and how much of a lever a target needs."""

from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import payoff.analysis
from payoff import ConfigError
from payoff.analysis import Forecast, forecast_curve, required_size
from payoff.analysis._forecast import (
    _LCDB_CALIBRATION,
    _fit_ensemble,
    _forecast_from,
    _prepare,
)
from payoff.analysis._learnt import (
    FEATURES,
    learnt_correction,
    load_correction,
    trees_from_sklearn,
)

SIZES = 100.0 * 2.0 ** np.arange(5)  # 100 ... 1600


def pow3(x: np.ndarray | float, a: float = 0.95, b: float = 0.5, c: float = 0.6) -> np.ndarray:
    return a - b * (np.asarray(x, dtype=float) / 100.0) ** -c


def test_known_pow3_curve_is_forecast_within_tolerance() -> None:
    # The fitted families alone recover a pure power law; the learnt correction (on by
    # default, for the data lever) moves it the way real accuracy curves went, within
    # the interval.
    f = forecast_curve(SIZES, pow3(SIZES), 12_800, correction=False)
    truth = float(pow3(12_800))
    assert f.point == pytest.approx(truth, abs=0.005)
    corrected = forecast_curve(SIZES, pow3(SIZES), 12_800)
    assert corrected.low <= truth <= corrected.high
    assert corrected.point == pytest.approx(truth, abs=0.03)
    assert f.low <= truth <= f.high
    assert f.low < f.point < f.high
    assert f.extrapolation == pytest.approx(8.0)
    assert f.n_points == 5 and f.level == 0.9 and f.at == 12_800
    assert f.ceiling == pytest.approx(0.95, abs=0.01)
    assert f.ceiling_low <= f.ceiling <= f.ceiling_high
    assert f.warnings == ()
    assert "median of" in f.method


def _synthetic(x: np.ndarray, a: float, b: float, c: float, shape: str) -> np.ndarray:
    if shape == "pow":
        return a - b * (x / 16.0) ** -c
    return a - b * np.exp(-c * (x / 16.0) ** 0.5)


def test_intervals_cover_synthetic_noisy_curves() -> None:
    rng = np.random.default_rng(0)
    sizes = 16.0 * np.sqrt(2.0) ** np.arange(8)  # observed: 16 ... 181, like LCDB's anchors
    at = sizes[-1] * 8
    inside = []
    for _ in range(50):
        a = rng.uniform(0.7, 0.98)
        b = rng.uniform(0.2, 0.6) * a
        c = rng.uniform(0.3, 1.2)
        # Half power laws, half a Weibull shape (not one of the ensemble's families).
        shape = "pow" if rng.random() < 0.5 else "weibull"
        curve = _synthetic(np.r_[sizes, at], a, b, c, shape)
        scores = np.clip(curve[:-1] + rng.normal(0, 0.005, len(sizes)), 0, 1)
        f = forecast_curve(sizes, scores, at)
        inside.append(f.low <= curve[-1] <= f.high)
    assert 0.75 <= np.mean(inside) <= 1.0


def test_bounded_metric_stays_within_bounds() -> None:
    scores = [0.95, 0.975, 0.988, 0.995, 0.998]
    f = forecast_curve(SIZES, scores, 50_000)
    assert 0.0 <= f.low <= f.point <= f.high <= 1.0
    assert f.ceiling_high <= 1.0
    low = forecast_curve(SIZES, [0.3, 0.2, 0.12, 0.07, 0.04], 50_000, higher_is_better=False)
    assert 0.0 <= low.low <= low.point <= low.high <= 1.0


def test_falling_error_metric_mirrors_the_rising_one() -> None:
    acc = forecast_curve(SIZES, pow3(SIZES), 12_800)
    err = forecast_curve(SIZES, 1.0 - pow3(SIZES), 12_800, higher_is_better=False)
    assert err.point == pytest.approx(1.0 - acc.point, abs=1e-9)
    assert err.low == pytest.approx(1.0 - acc.high, abs=1e-9)
    assert err.high == pytest.approx(1.0 - acc.low, abs=1e-9)
    assert err.ceiling == pytest.approx(1.0 - acc.ceiling, abs=1e-9)


def test_unbounded_error_metric() -> None:
    mse = 40.0 + 300.0 * (SIZES / 100.0) ** -0.7
    f = forecast_curve(SIZES, mse, 12_800, higher_is_better=False, bounds=None)
    truth = 40.0 + 300.0 * 128.0**-0.7
    assert f.low <= f.point <= f.high
    assert f.point == pytest.approx(truth, rel=0.05)
    assert f.point < mse[-1]


@pytest.mark.parametrize("n", [1, 2])
def test_too_few_points_give_a_wide_interval_and_a_warning(n: int) -> None:
    f = forecast_curve(SIZES[:n], [0.6, 0.7][:n], 1_000)
    assert f.point == pytest.approx([0.6, 0.7][n - 1])
    assert f.high - f.low >= 0.3
    assert any("distinct size" in w for w in f.warnings)
    assert math.isnan(f.ceiling)
    inv = required_size(SIZES[:n], [0.6, 0.7][:n], 0.9)
    assert inv.warnings and inv.message


def test_flat_curve_gets_a_warning_and_a_wider_interval() -> None:
    clean = forecast_curve(SIZES, pow3(SIZES), 3_200)
    f = forecast_curve(SIZES, [0.8] * 5, 3_200)
    assert f.point == pytest.approx(0.8, abs=0.01)
    assert any("flat" in w for w in f.warnings)
    assert f.low < 0.8 < f.high
    assert f.high - f.low > clean.high - clean.low


def test_noisy_curve_gets_a_warning_and_a_wide_interval() -> None:
    scores = [0.70, 0.62, 0.75, 0.64, 0.72]
    f = forecast_curve(SIZES, scores, 12_800)
    assert any("noisy" in w for w in f.warnings)
    assert f.high - f.low >= 0.15
    assert f.low <= 0.7 <= f.high


def test_repeated_sizes_are_averaged_and_their_spread_widens_the_interval() -> None:
    means = pow3(SIZES)
    sizes = np.repeat(SIZES, 2)
    scores = np.repeat(means, 2) + np.tile([-0.01, 0.01], len(SIZES))
    single = forecast_curve(SIZES, means, 6_400)
    seeds = forecast_curve(sizes, scores, 6_400)
    assert seeds.n_points == 5
    assert seeds.point == pytest.approx(single.point, abs=1e-6)
    assert seeds.high - seeds.low > single.high - single.low


def test_levels_nest() -> None:
    widths = [
        forecast_curve(SIZES, pow3(SIZES), 12_800, level=level) for level in (0.5, 0.8, 0.9, 0.99)
    ]
    for narrow, wide in zip(widths, widths[1:], strict=False):
        assert wide.low <= narrow.low and narrow.high <= wide.high
    beyond = forecast_curve(SIZES, pow3(SIZES), 12_800, level=0.999)
    assert any("beyond the calibrated" in w for w in beyond.warnings)


@pytest.mark.parametrize(
    ("sizes", "scores", "at", "kwargs"),
    [
        ([100, 200, 400], [0.5, math.nan, 0.7], 800, {}),
        ([100, 200, 400], [0.5, 0.6], 800, {}),
        ([0, 200, 400], [0.5, 0.6, 0.7], 800, {}),
        ([-100, 200, 400], [0.5, 0.6, 0.7], 800, {}),
        ([100, 200, math.inf], [0.5, 0.6, 0.7], 800, {}),
        ([100, 200, 400], [0.5, 0.6, 0.7], 0, {}),
        ([100, 200, 400], [0.5, 0.6, 0.7], -5, {}),
        ([100, 200, 400], [0.5, 0.6, 0.7], math.nan, {}),
        ([100, 200, 400], [0.5, 0.6, 0.7], 800, {"level": 1.0}),
        ([100, 200, 400], [0.5, 0.6, 1.7], 800, {}),
        ([100, 200, 400], [0.5, 0.6, 0.7], 800, {"bounds": (1.0, 0.0)}),
        ([], [], 800, {}),
    ],
)
def test_invalid_inputs_raise_config_error(
    sizes: list[float], scores: list[float], at: float, kwargs: dict[str, object]
) -> None:
    with pytest.raises(ConfigError):
        forecast_curve(sizes, scores, at, **kwargs)  # type: ignore[arg-type]


def test_required_size_finds_the_known_answer() -> None:
    inv = required_size(SIZES, pow3(SIZES), 0.93, correction=False)
    truth = 100.0 * 0.04 ** (-1 / 0.6)  # 0.95 - 0.5 (x/100)^-0.6 = 0.93
    assert inv.reachable
    assert inv.point == pytest.approx(truth, rel=0.05)
    assert inv.low <= inv.point <= inv.high
    corrected = required_size(SIZES, pow3(SIZES), 0.93)
    assert corrected.low <= truth <= corrected.high
    # Real curves rise longer than the fits say, so the corrected answer needs less data.
    assert SIZES[-1] < corrected.point < inv.point
    assert inv.ceiling == pytest.approx(0.95, abs=0.01)
    assert "0.93" in inv.message


def test_required_size_of_a_target_already_measured() -> None:
    inv = required_size(SIZES, pow3(SIZES), 0.8)
    assert inv.reachable and inv.point <= SIZES[-1]


def test_required_size_says_unreachable_above_the_ceiling() -> None:
    plateau = 0.8 - 0.3 * np.exp(-SIZES / 150.0)  # flat at 0.8 by the last sizes
    inv = required_size(SIZES, plateau, 0.99)
    assert not inv.reachable
    assert inv.ceiling_high < 0.99
    assert math.isinf(inv.point)
    assert "out of reach" in inv.message
    assert not required_size(SIZES, pow3(SIZES), 1.5).reachable


def test_required_size_for_a_falling_error_metric() -> None:
    err = 1.0 - pow3(SIZES)
    inv = required_size(SIZES, err, 0.07, higher_is_better=False, correction=False)
    assert inv.reachable
    assert inv.point == pytest.approx(100.0 * 0.04 ** (-1 / 0.6), rel=0.05)
    assert inv.low <= inv.point <= inv.high


def test_results_are_frozen() -> None:
    f = forecast_curve(SIZES, pow3(SIZES), 3_200)
    assert isinstance(f, Forecast)
    with pytest.raises(dataclasses.FrozenInstanceError):
        f.point = 1.0  # type: ignore[misc]


def test_all_lists_exactly_the_public_names() -> None:
    public = {
        n
        for n in dir(payoff.analysis)
        if not n.startswith("_")
        and n != "annotations"
        and not isinstance(getattr(payoff.analysis, n), type(payoff.analysis))
    }
    assert public == set(payoff.analysis.__all__)


def test_import_loads_no_heavy_dependency() -> None:
    code = (
        "import sys, payoff.analysis; "
        "print(sorted(m for m in ('torch', 'codecarbon', 'plotly') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_accuracy_is_corrected_by_the_learnt_trees_and_other_metrics_fall_back() -> None:
    acc = forecast_curve(SIZES, pow3(SIZES), 12_800)
    assert "gradient-boosted trees" in acc.method
    assert acc.low < acc.point < acc.high
    err = forecast_curve(SIZES, 1.0 - pow3(SIZES), 12_800, higher_is_better=False)
    assert err.point == pytest.approx(1.0 - acc.point, abs=1e-9)
    assert err.low == pytest.approx(1.0 - acc.high, abs=1e-9)
    mse = 40.0 + 300.0 * (SIZES / 100.0) ** -0.7
    unbounded = forecast_curve(SIZES, mse, 12_800, higher_is_better=False, bounds=None)
    assert "no learnt correction" in unbounded.method
    three = forecast_curve(SIZES[:3], pow3(SIZES[:3]), 3_200)
    assert "no learnt correction" in three.method


def test_the_correction_joins_the_fitted_curve_at_the_largest_measured_size() -> None:
    ens = _fit_ensemble(_prepare(SIZES, pow3(SIZES), higher_is_better=True, bounds=(0, 1)))
    plain = _forecast_from(ens, SIZES[-1], 0.9, _LCDB_CALIBRATION)
    learnt = _forecast_from(ens, SIZES[-1], 0.9, _LCDB_CALIBRATION, learnt_correction())
    assert learnt.point == pytest.approx(plain.point) and learnt.high == pytest.approx(plain.high)
    # Just past it, the point moves only a little.
    near = _forecast_from(ens, SIZES[-1] * 1.05, 0.9, _LCDB_CALIBRATION, learnt_correction())
    assert abs(near.point - plain.point) < 0.01


def test_exported_trees_predict_as_scikit_learn(tmp_path: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor

    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, len(FEATURES)))
    x[rng.random(x.shape) < 0.05] = np.nan  # missing values take the learnt side
    y = np.nan_to_num(x[:, 0]) ** 2 - np.nan_to_num(x[:, 3]) + rng.normal(0, 0.1, 400)
    model = HistGradientBoostingRegressor(loss="absolute_error", max_iter=30).fit(x, y)
    trees = trees_from_sklearn(model)
    np.testing.assert_allclose(trees.predict(x), model.predict(x), atol=1e-12)
    shipped = learnt_correction()
    assert shipped is not None
    path = tmp_path / "c.npz"
    dataclasses.replace(shipped, point=trees).save(str(path))
    loaded = load_correction(str(path))
    assert loaded is not None
    np.testing.assert_allclose(loaded.point.predict(x), model.predict(x), atol=1e-12)
    assert loaded.z_low == shipped.z_low and loaded.source == shipped.source


def test_a_correction_learnt_on_other_inputs_is_not_used(tmp_path: Path) -> None:
    shipped = learnt_correction()
    assert shipped is not None
    path = tmp_path / "old.npz"
    shipped.save(str(path))
    with np.load(path) as npz:
        arrays = dict(npz)
    arrays["features"] = np.array(["reach", "last"])
    np.savez(path, **arrays)
    assert load_correction(str(path)) is None


def test_the_correction_beats_the_fits_on_real_lcdb_curves() -> None:
    # A regression guard: features computed differently from how the trees learnt them
    # would make the corrected forecasts worse than the plain fits on these curves. They
    # are among the curves the trees learnt from, so this checks the wiring, not skill
    # (benchmarks/lcdb_forecast.py measures that on data sets left out).
    import pandas as pd

    data = Path(__file__).parents[2] / "benchmarks" / "data" / "lcdb_public_curves.csv.gz"
    frame = pd.read_csv(data).sort_values("size_train")
    curves = [g for _, g in frame.groupby(["openmlid", "learner"]) if len(g) >= 10]
    errors: dict[bool, list[float]] = {True: [], False: []}
    for g in curves[:: max(1, len(curves) // 60)]:
        x, y = g["size_train"].to_numpy(float), g["score_valid"].to_numpy(float)
        seen = x <= x[-1] / 8
        for correction in (True, False):
            f = forecast_curve(x[seen], y[seen], x[-1], correction=correction)
            errors[correction].append(f.point - y[-1])
    corrected, plain = np.array(errors[True]), np.array(errors[False])
    assert np.median(np.abs(corrected)) < np.median(np.abs(plain))
    assert abs(corrected.mean()) < abs(plain.mean())
