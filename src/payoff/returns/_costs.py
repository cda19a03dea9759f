"""The cost of each kind of error: a study's ``error_costs_usd`` as a matrix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from payoff._errors import ConfigError


def cost_matrix(
    n_classes: int,
    classes: Sequence[str],
    *,
    usd_per_error: float,
    error_costs: Mapping[str, Mapping[str, float]] | None,
    where: str = "value.error_costs_usd",
) -> np.ndarray:
    """Return the cost of predicting column j when the truth is row i (0 on the diagonal).

    ``error_costs`` keys are class names or indices (``"1": {"0": 50}``: a true 1 called 0
    costs $50); kinds it does not list cost nothing.

    Raises:
        ConfigError: a key that names no class.
    """
    costs = np.full((n_classes, n_classes), float(usd_per_error))
    if error_costs is not None:
        costs[:] = 0.0
        index = {str(i): i for i in range(n_classes)} | {c: i for i, c in enumerate(classes)}
        for true, row in error_costs.items():
            for pred, usd in row.items():
                for key in (true, pred):
                    if key not in index:
                        raise ConfigError(
                            f"{where} names class {key!r}, which the task does not "
                            f"have; its classes are {', '.join(map(repr, classes)) or 'unnamed'} "
                            f"(or indices 0 to {n_classes - 1})."
                        )
                costs[index[true], index[pred]] = float(usd)
    np.fill_diagonal(costs, 0.0)
    return costs
