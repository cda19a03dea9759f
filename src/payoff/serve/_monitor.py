"""Drift: are the inputs and predictions being served still like the training data?

Inputs are compared raw, as a person reads them, with the training split as it was read:
a numeric column by PSI on the training quantile bins and a KS test on the same values; a
categorical, binary or integer-coded column (few distinct values) by its category shares,
PSI and a chi-square test, new categories and missing values counted as shares of their
own. Predictions are compared with what the model predicted on the held-out validation
and test splits: class shares (chi-square) and the highest class probability a row (PSI,
KS), or a regression's values (KS).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from payoff._errors import ConfigError
from payoff.serve._log import latest_trial, read_confidences, read_log
from payoff.serve._model import decision_of, default_log_path
from payoff.study._builtin import task_of

if TYPE_CHECKING:
    import pandas as pd

    from payoff.study import Study
    from payoff.tasks import Task

# PSI above 0.2 is the usual "significant shift" line; 0.1 to 0.2 is "moderate".
PSI_THRESHOLD = 0.2
# A numeric column with at most this many distinct training values (a 0/1 flag, a count, a
# code) is read by its value shares: quantile bins would merge its values into one bin.
FEW_VALUES = 10
MISSING, NEW = "(missing)", "(new category)"


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    """One raw input, or the predictions: served against training.

    Attributes:
        name: The column, or ``"prediction"``.
        kind: ``"numeric"`` (PSI on bins, KS) or ``"categorical"`` (PSI on shares,
            chi-square).
        psi: Population stability index.
        test: ``"KS"`` or ``"chi-square"``.
        statistic: The test's statistic.
        p: The test's p-value (before the multiple-testing correction).
        drifted: PSI above the threshold beyond sampling noise, or p below the corrected
            alpha.
        new_share: Share of served values never seen in training (categorical only).
    """

    name: str
    kind: str
    psi: float
    test: str
    statistic: float
    p: float
    drifted: bool
    new_share: float = 0.0


@dataclass(frozen=True, slots=True)
class DriftReport:
    """Drift of every input and of the predictions, and whether retraining looks warranted."""

    n_served: int
    n_reference: int
    features: tuple[FeatureDrift, ...]
    prediction: FeatureDrift
    confidence: FeatureDrift | None
    retrain: bool
    message: str
    psi_threshold: float
    alpha: float


def _psi_of_counts(ref: np.ndarray, cur: np.ndarray) -> float:
    # Half a count in every cell: an empty cell must not make PSI infinite, nor a rare
    # category seen once in a small batch look like a shift.
    p = (ref + 0.5) / (ref.sum() + 0.5 * ref.size)
    q = (cur + 0.5) / (cur.sum() + 0.5 * cur.size)
    return float(np.sum((q - p) * np.log(q / p)))


def _over(value: float, threshold: float, cells: int, n_ref: int, n_cur: int) -> bool:
    """Whether a PSI exceeds ``threshold`` beyond sampling noise: two samples of one
    distribution show (cells - 1)(1/n + 1/m) on average, which small samples make large."""
    noise = (cells - 1) * (1 / max(1, n_ref) + 1 / max(1, n_cur))
    return value > threshold + noise


def psi(reference: np.ndarray, current: np.ndarray, *, bins: int = 10) -> float:
    """Return the population stability index of ``current`` against ``reference``.

    Bins are the reference's quantiles (equal-count, ties kept in one bin); missing values
    (NaN) are a bin of their own.
    """
    reference, current = np.asarray(reference, float), np.asarray(current, float)
    ref_ok, cur_ok = reference[~np.isnan(reference)], current[~np.isnan(current)]
    edges = np.unique(np.quantile(ref_ok, np.linspace(0, 1, bins + 1))) if ref_ok.size else []
    if len(edges) < 2:  # a constant reference: its value, and everything else
        value = ref_ok[0] if ref_ok.size else math.nan
        ref = np.array([np.sum(ref_ok == value), np.sum(ref_ok != value)])
        cur = np.array([np.sum(cur_ok == value), np.sum(cur_ok != value)])
    else:
        edges = np.concatenate([[-np.inf], edges[1:-1], [np.inf]])
        ref, cur = np.histogram(ref_ok, edges)[0], np.histogram(cur_ok, edges)[0]
    ref = np.append(ref, reference.size - ref_ok.size)
    cur = np.append(cur, current.size - cur_ok.size)
    return _psi_of_counts(ref, cur)


def _key(value: Any) -> str:
    """A value as a category: numbers by value (1 and 1.0 alike), missing as MISSING."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, int | float | np.number) and not isinstance(value, bool | np.bool_):
        return f"{float(value):g}"
    return str(value)


def _compare_shares(
    name: str, reference: Sequence[Any], current: Sequence[Any], *, alpha: float, threshold: float
) -> FeatureDrift:
    from scipy.stats import chi2_contingency

    ref_keys, cur_keys = [_key(v) for v in reference], [_key(v) for v in current]
    known = sorted(set(ref_keys))
    seen = set(known)
    cur_keys = [k if k in seen or k == MISSING else NEW for k in cur_keys]
    cats = known + sorted(set(cur_keys) - seen)
    ref = np.array([ref_keys.count(c) for c in cats], float)
    cur = np.array([cur_keys.count(c) for c in cats], float)
    value = _psi_of_counts(ref, cur)
    table = np.vstack([ref, cur])[:, (ref + cur) > 0]
    if table.shape[1] < 2:
        stat, p = 0.0, 1.0
    else:
        result = chi2_contingency(table, correction=False)
        stat, p = float(result.statistic), float(result.pvalue)
    new_share = cur_keys.count(NEW) / max(1, len(cur_keys))
    cells = int(np.sum((ref + cur) > 0))
    drifted = _over(value, threshold, cells, len(ref_keys), len(cur_keys)) or p < alpha
    return FeatureDrift(name, "categorical", value, "chi-square", stat, p, drifted, new_share)


def _compare_numbers(
    name: str, reference: np.ndarray, current: np.ndarray, *, alpha: float, threshold: float
) -> FeatureDrift:
    from scipy.stats import ks_2samp

    reference, current = np.asarray(reference, float), np.asarray(current, float)
    value = psi(reference, current)
    ref, cur = reference[~np.isnan(reference)], current[~np.isnan(current)]
    if ref.size and cur.size:
        ks = ks_2samp(ref, cur, method="asymp")  # exact is slow on thousands of rows
        stat, p = float(ks.statistic), float(ks.pvalue)
    else:
        stat, p = 0.0, 1.0
    cells = min(10, len(np.unique(ref))) + 1  # psi()'s bins and the missing values' bin
    drifted = _over(value, threshold, cells, reference.size, current.size) or p < alpha
    return FeatureDrift(name, "numeric", value, "KS", stat, p, drifted)


def _is_few_valued(column: pd.Series) -> bool:
    import pandas as pd

    return not pd.api.types.is_numeric_dtype(column) or column.nunique() <= FEW_VALUES


def _reference_predictions(
    study: Study, task: Task, trial: int | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """What the served model predicted on the held-out splits (class indices or values)
    and, for a classifier, its highest class probability a row; without its stored
    predictions, the training labels and no probabilities."""
    record = study.record()  # every trial's stored predictions, read once
    number = trial if trial is not None else next(iter(record.predictions), None)
    stored = record.predictions.get(number) if number is not None else None
    if stored is not None:
        # Both held-out splits: predictions on rows the model never trained on.
        out = np.concatenate([np.asarray(stored.out_val), np.asarray(stored.out_test)])
        if task.kind != "classification":
            return out.reshape(-1), None
        # Called as the service calls them (a value threshold, not always argmax).
        rule = decision_of(record, number)
        calls = rule.decide(out) if rule is not None else out.argmax(axis=1)
        return calls, out.max(axis=1)
    return np.asarray(task.y_train), None


def monitor(
    study: Study,
    *,
    log_path: str | Path | None = None,
    trial: int | None = None,
    psi_threshold: float = PSI_THRESHOLD,
    alpha: float = 0.01,
    min_served: int = 50,
    window: int = 10_000,
    synthetic: bool = False,
) -> DriftReport:
    """Compare what the service logged with the training data, input by input.

    A column drifts when its PSI exceeds ``psi_threshold`` beyond sampling noise or its
    test (KS or chi-square) rejects "same distribution" at ``alpha``, Bonferroni-corrected
    within two families: the inputs, and the predictions with their confidence. Retraining
    looks warranted when the predictions or their confidence drift, or a tenth of the
    inputs do. Only the newest ``window`` logged records are read, so memory stays bounded
    however long the log; load-test traffic (logged as synthetic) is left out unless
    ``synthetic``.

    Raises:
        ConfigError: no log, or fewer than ``min_served`` logged records.
    """
    import pandas as pd

    path = Path(log_path) if log_path is not None else default_log_path(study)
    if not path.is_file():
        raise ConfigError(
            f"no prediction log at {str(path)!r}: serve the study first (payoff serve), "
            "or pass --log with the file the service wrote."
        )
    records, predictions = read_log(path, trial=trial, limit=window, synthetic=synthetic)
    served_sure = read_confidences(path, trial=trial, limit=window, synthetic=synthetic)
    if len(records) < min_served:
        raise ConfigError(
            f"the log holds {len(records)} served records; drift needs at least {min_served}."
        )
    task = task_of(study.config)
    served = pd.DataFrame.from_records(records, columns=list(task.feature_names))
    if task.raw_train is not None:
        reference = task.raw_train
    else:  # text: the token ids the model reads
        reference = pd.DataFrame(task.X_train, columns=list(task.feature_names))
        served = pd.DataFrame(
            np.asarray(task.preprocessor.transform(served)), columns=list(task.feature_names)
        )
    names = list(task.feature_names)
    # Two families, each Bonferroni-corrected: the inputs, and the outputs (predictions and
    # their confidence), each of which can call for retraining on its own.
    options = {"alpha": alpha / max(1, len(names)), "threshold": psi_threshold}
    on_outputs = {"alpha": alpha / 2, "threshold": psi_threshold}

    def compare(name: str) -> FeatureDrift:
        ref, cur = reference[name], served[name]
        if _is_few_valued(ref):
            return _compare_shares(name, ref.tolist(), cur.tolist(), **options)
        cur_numbers = pd.to_numeric(cur, errors="coerce").to_numpy(float)
        return _compare_numbers(name, ref.to_numpy(float), cur_numbers, **options)

    features = tuple(compare(n) for n in names)
    expected, expected_sure = _reference_predictions(study, task, trial or latest_trial(path))
    confidence = None
    if task.kind == "classification":
        ref_labels = [task.classes[int(i)] for i in expected]
        prediction = _compare_shares("prediction", ref_labels, list(predictions), **on_outputs)
        sure = np.asarray([c for c in served_sure if c is not None], dtype=float)
        if expected_sure is not None and len(sure) >= min_served:
            confidence = _compare_numbers(
                "prediction confidence", expected_sure, sure, **on_outputs
            )
    else:
        prediction = _compare_numbers(
            "prediction", expected, np.asarray(predictions, float), **on_outputs
        )
    drifted = [f for f in features if f.drifted]
    retrain = (
        prediction.drifted
        or (confidence is not None and confidence.drifted)
        or len(drifted) >= max(1, len(features) // 10)
    )
    worst = ", ".join(
        f"{f.name} (PSI {f.psi:.2f}"
        + (f", {f.new_share:.0%} new categories" if f.new_share else "")
        + ")"
        for f in sorted(drifted, key=lambda f: -f.psi)[:5]
    )
    summary = (
        f"{len(drifted)} of {len(features)} inputs drifted{': ' + worst if worst else ''}; "
        f"predictions PSI {prediction.psi:.2f} ({prediction.test} p {prediction.p:.2g})"
        + (
            f", their confidence PSI {confidence.psi:.2f} (KS p {confidence.p:.2g})"
            if confidence is not None
            else ""
        )
    )
    message = (
        f"retraining looks warranted: {summary}."
        if retrain
        else f"no drift that warrants retraining: {summary}."
    )
    return DriftReport(
        n_served=len(records),
        n_reference=len(reference),
        features=features,
        prediction=prediction,
        confidence=confidence,
        retrain=retrain,
        message=message,
        psi_threshold=psi_threshold,
        alpha=alpha,
    )
