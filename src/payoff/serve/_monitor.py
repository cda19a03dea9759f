"""Drift: are the inputs and predictions being served still like the training data?"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from payoff._errors import ConfigError

if TYPE_CHECKING:
    from payoff.study import Study

# PSI above 0.2 is the usual "significant shift" line; 0.1 to 0.2 is "moderate".
PSI_THRESHOLD = 0.2


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    """One input (as encoded for the model) or the prediction: served against training."""

    name: str
    psi: float
    ks: float
    ks_p: float
    drifted: bool


@dataclass(frozen=True, slots=True)
class DriftReport:
    """Drift of every input and of the predictions, and whether retraining looks warranted."""

    n_served: int
    n_reference: int
    features: tuple[FeatureDrift, ...]
    prediction: FeatureDrift
    retrain: bool
    message: str
    psi_threshold: float
    ks_alpha: float


def psi(reference: np.ndarray, current: np.ndarray, *, bins: int = 10) -> float:
    """Return the population stability index of ``current`` against ``reference``.

    Bins are the reference's quantiles (equal-count), so the statistic does not depend on
    the feature's scale; empty bins get a small floor instead of an infinite term.
    """
    # Served values pass through float32 encoding: round off that noise, or tied values at a
    # bin edge would fall on either side of it and read as a shift.
    reference, current = np.round(reference, 5), np.round(current, 5)
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    if edges.size < 2:  # a constant reference: any other value is a shift
        return float(np.mean(current != reference[0]) > 0) * 10.0
    edges[0], edges[-1] = -np.inf, np.inf
    ref = np.histogram(reference, edges)[0] / reference.size
    cur = np.histogram(current, edges)[0] / current.size
    ref, cur = np.clip(ref, 1e-4, None), np.clip(cur, 1e-4, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def monitor(
    study: Study,
    *,
    log_path: str | Path | None = None,
    trial: int | None = None,
    psi_threshold: float = PSI_THRESHOLD,
    ks_alpha: float = 0.01,
    min_served: int = 50,
    window: int = 10_000,
) -> DriftReport:
    """Compare what the service logged with the training data, input by input.

    An input drifts when its PSI exceeds ``psi_threshold`` or a two-sample KS test rejects
    "same distribution" at ``ks_alpha`` (Bonferroni-corrected over the inputs). Retraining
    looks warranted when the predictions drift or a tenth of the inputs do.

    Only the newest ``window`` logged records are read, so memory stays bounded however
    long the log.

    Raises:
        ConfigError: no log, or fewer than ``min_served`` logged records.
    """
    import pandas as pd
    from scipy.stats import ks_2samp

    from payoff.serve._log import read_log
    from payoff.serve._model import default_log_path
    from payoff.study._builtin import task_of

    path = Path(log_path) if log_path is not None else default_log_path(study)
    if not path.is_file():
        raise ConfigError(
            f"no prediction log at {str(path)!r}: serve the study first (payoff serve), "
            "or pass --log with the file the service wrote."
        )
    records, predictions = read_log(path, trial=trial, limit=window)
    if len(records) < min_served:
        raise ConfigError(
            f"the log holds {len(records)} served records; drift needs at least {min_served}."
        )
    task = task_of(study.config)
    frame = pd.DataFrame.from_records(records, columns=list(task.feature_names))
    served = np.asarray(task.preprocessor.transform(frame), dtype=np.float64)
    reference = task.X_train.astype(np.float64)
    names = [str(n) for n in task.preprocessor.get_feature_names_out()]
    alpha = ks_alpha / max(1, len(names))

    def compare(name: str, ref: np.ndarray, cur: np.ndarray, discrete: bool) -> FeatureDrift:
        value = psi(ref, cur)
        if discrete:  # KS is for continuous values; classes are judged by PSI alone
            return FeatureDrift(name, value, float("nan"), float("nan"), value > psi_threshold)
        ks = ks_2samp(ref, cur, method="asymp")  # exact is slow, and fails on ties
        stat, p = float(ks.statistic), float(ks.pvalue)
        return FeatureDrift(name, value, stat, p, value > psi_threshold or p < alpha)

    features = tuple(
        compare(n, reference[:, j], served[:, j], discrete=False) for j, n in enumerate(names)
    )
    if task.kind == "classification":
        index = {c: i for i, c in enumerate(task.classes)}
        cur = np.asarray([index.get(str(p), -1) for p in predictions], dtype=np.float64)
        prediction = compare("prediction", task.y_train.astype(np.float64), cur, discrete=True)
    else:
        cur = np.asarray(predictions, dtype=np.float64)
        prediction = compare("prediction", task.y_train.astype(np.float64), cur, discrete=False)
    drifted = [f for f in features if f.drifted]
    retrain = prediction.drifted or len(drifted) >= max(1, len(features) // 10)
    worst = ", ".join(
        f"{f.name} (PSI {f.psi:.2f})" for f in sorted(drifted, key=lambda f: -f.psi)[:5]
    )
    message = (
        f"retraining looks warranted: {len(drifted)} of {len(features)} inputs drifted"
        f"{': ' + worst if worst else ''}; predictions PSI {prediction.psi:.2f}."
        if retrain
        else f"no drift that warrants retraining: {len(drifted)} of {len(features)} inputs "
        f"drifted; predictions PSI {prediction.psi:.2f}."
    )
    return DriftReport(
        n_served=len(records),
        n_reference=len(reference),
        features=features,
        prediction=prediction,
        retrain=retrain,
        message=message,
        psi_threshold=psi_threshold,
        ks_alpha=ks_alpha,
    )
