"""Reference curves and nearest-neighbour forecasts from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from payoff.analysis._reference import (
    build_reference_curves,
    neighbour_forecast,
    reference_curves,
    save_reference_curves,
)

SIZES = 16.0 * np.sqrt(2.0) ** np.arange(7)


def _pow(x: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a - b * (x / 16.0) ** -c


def test_shipped_references_load() -> None:
    ref = reference_curves()
    assert len(ref) > 1000
    finite = ref.values[np.isfinite(ref.values)]
    assert finite.min() >= 0.0 and finite.max() <= 1.0
    assert len(np.unique(ref.openml_ids)) > 100


def test_excluding_drops_a_data_set() -> None:
    ref = reference_curves()
    some = int(ref.openml_ids[0])
    rest = ref.excluding([some])
    assert some not in set(rest.openml_ids.tolist())
    assert len(rest) == len(ref) - int((ref.openml_ids == some).sum())


def test_neighbours_of_a_known_family_forecast_its_rise(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    full = 16.0 * np.sqrt(2.0) ** np.arange(14)
    curves = [
        (i, full, _pow(full, 0.9, rng.uniform(0.3, 0.5), 0.5 + 0.01 * rng.normal()))
        for i in range(40)
    ]
    ref = build_reference_curves(curves)
    save_reference_curves(ref, str(tmp_path / "ref.npz"))
    assert (tmp_path / "ref.npz").stat().st_size < 50_000
    scores = _pow(SIZES, 0.9, 0.4, 0.5)
    at = np.array([SIZES[-1] * 8, 1e9])
    nb = neighbour_forecast(ref, SIZES, scores, at, k=10)
    assert abs(nb.point[0] - _pow(at[:1], 0.9, 0.4, 0.5)[0]) < 0.02
    assert np.isnan(nb.point[1])  # no reference reaches that far
