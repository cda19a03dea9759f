from __future__ import annotations

import numpy as np
import pytest

from payoff._errors import ConfigError
from payoff.tasks import nested_subset


def _labels() -> np.ndarray:
    # Imbalanced: 60% / 30% / 10%.
    return np.repeat(np.array([0, 1, 2], dtype=np.int64), [300, 150, 50])


@pytest.mark.parametrize("stratify", [True, False])
def test_subsets_are_nested_prefixes(stratify: bool) -> None:
    y = _labels()
    sizes = [1, 7, 50, 123, 400, 500]
    subsets = [nested_subset(y, n, seed=5, stratify=stratify) for n in sizes]
    for n, subset in zip(sizes, subsets, strict=True):
        assert len(subset) == n
        assert subset.dtype == np.int64
        assert len(np.unique(subset)) == n
    for small, large in zip(subsets, subsets[1:], strict=False):
        assert np.array_equal(large[: len(small)], small)
    assert sorted(subsets[-1]) == list(range(len(y)))


def test_same_seed_same_subset_different_seed_differs() -> None:
    y = _labels()
    assert np.array_equal(nested_subset(y, 40, seed=1), nested_subset(y, 40, seed=1))
    assert not np.array_equal(nested_subset(y, 40, seed=1), nested_subset(y, 40, seed=2))


def test_stratified_prefixes_keep_class_proportions() -> None:
    y = _labels()
    full = np.bincount(y) / len(y)
    order = nested_subset(y, len(y), seed=0)
    for n in range(10, len(y) + 1):
        share = np.bincount(y[order[:n]], minlength=3) / n
        # Each class is within one row of its exact share.
        assert np.all(np.abs(share - full) * n <= 1.0 + 1e-9), n


def test_stratified_string_labels() -> None:
    y = np.array(["cat", "dog"] * 50)
    subset = nested_subset(y, 10, seed=0)
    assert (y[subset] == "cat").sum() == 5


def test_n_is_clipped_and_validated() -> None:
    y = _labels()
    assert len(nested_subset(y, 10_000, seed=0)) == len(y)
    with pytest.raises(ConfigError, match=">= 1"):
        nested_subset(y, 0, seed=0)
    with pytest.raises(ConfigError, match=">= 1"):
        nested_subset(y, 0.5, seed=0)  # type: ignore[arg-type]


def test_float_targets_are_not_stratified() -> None:
    y = np.linspace(0.0, 1.0, 50, dtype=np.float32)
    assert np.array_equal(
        nested_subset(y, 20, seed=3), nested_subset(y, 20, seed=3, stratify=False)
    )
