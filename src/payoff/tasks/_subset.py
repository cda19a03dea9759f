"""Nested training subsets, so that learning curves over data size are comparable."""

from __future__ import annotations

import numpy as np

from payoff._errors import ConfigError


def nested_subset(y: np.ndarray, n: int, *, seed: int, stratify: bool = True) -> np.ndarray:
    """Return the indices of ``n`` training rows, nested across sizes.

    For one seed, the subset of size ``n`` is a prefix of the subset of any size
    ``m > n``, so a learning curve adds rows rather than swapping them. With
    ``stratify``, rows are ordered so that every prefix keeps class proportions close
    to those of ``y`` (a seeded shuffle, then each row ranked by its position within
    its class divided by the class size). Stratification applies to class labels
    (integer, bool, string); it is ignored for float (regression) targets.

    Args:
        y: The training targets, shape ``(n_rows,)``.
        n: How many rows to take; clipped to ``len(y)``.
        seed: Seed of the shuffle; the same seed gives the same order.
        stratify: Keep class proportions in every prefix.

    Returns:
        int64 row indices into ``y``, of length ``min(n, len(y))``.

    Raises:
        ConfigError: ``n`` is not an integer >= 1, or ``y`` is not one-dimensional.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ConfigError(f"subset size n must be an integer >= 1, got {n!r}.")
    y = np.asarray(y)
    if y.ndim != 1:
        raise ConfigError(f"y must be one-dimensional, got shape {y.shape}.")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    if stratify and not np.issubdtype(y.dtype, np.floating):
        _, codes = np.unique(y[order], return_inverse=True)
        codes = codes.reshape(-1)
        counts = np.bincount(codes)
        # Rank of each shuffled row within its class, in shuffled order.
        by_class = np.argsort(codes, kind="stable")
        starts = np.cumsum(counts) - counts
        rank = np.empty(len(codes), dtype=np.int64)
        rank[by_class] = np.arange(len(codes)) - np.repeat(starts, counts)
        key = (rank + 0.5) / counts[codes]
        order = order[np.argsort(key, kind="stable")]
    return order[: min(int(n), len(y))].astype(np.int64)
