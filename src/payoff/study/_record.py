"""The study record: a frozen, storage-independent snapshot of a study that analysis reads.

Analysis and the report never touch the live study nor Optuna's attribute encoding: they
take this record, built once. A test can build one by hand.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from payoff.study._storage import open_artifact

if TYPE_CHECKING:
    import pandas as pd

    from payoff.config import StudyConfig
    from payoff.study._study import Study


@dataclass(frozen=True, slots=True)
class Predictions:
    """What one trial's model predicted on the validation and test splits.

    Attributes:
        y_val: True class indices (or targets) of the validation split.
        out_val: Class probabilities, one column a class (or regression predictions).
        y_test: The same for the test split.
        out_test: The same for the test split.
        y_train: The training labels the trial saw (the ``majority`` baseline), or None.
        classes: Class names in index order (empty for a regression).
    """

    y_val: np.ndarray = field(repr=False)
    out_val: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    out_test: np.ndarray = field(repr=False)
    y_train: np.ndarray | None = field(default=None, repr=False)
    classes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StudyRecord:
    """A study as analysis reads it: its file, its trials, their curves and predictions.

    Attributes:
        name: The study's name.
        config: The study file as last run.
        trials: One row a trial (every state), as :meth:`Study.trials_frame` returns it.
        curves: Each trial's per-epoch curve, by trial number.
        predictions: Each trial's stored predictions, by trial number (trials that stored
            none are absent).
        serving: The measured serving price (``{"usd_per_million": x, "measured": true}``),
            or None.
        pilot: The pilot's report (design: pilot), or None.
        n_train_available: The training split's size, when the study knows it.
    """

    name: str
    config: StudyConfig
    trials: pd.DataFrame = field(repr=False)
    curves: Mapping[int, tuple[Mapping[str, float], ...]] = field(default_factory=dict)
    predictions: Mapping[int, Predictions] = field(default_factory=dict, repr=False)
    serving: Mapping[str, Any] | None = None
    pilot: Mapping[str, Any] | None = None
    n_train_available: int | None = None

    def trials_frame(self) -> pd.DataFrame:
        """Return a copy of the trials frame."""
        return self.trials.copy()


def read_predictions(store: Any, artifact_id: str) -> Predictions:
    """Return the predictions a trial saved (see ``Trial.save_predictions``)."""
    with (
        open_artifact(store, artifact_id, "a trial's predictions") as f,
        np.load(f, allow_pickle=False) as npz,
    ):
        arrays = {k: npz[k] for k in npz.files}
    return Predictions(
        y_val=arrays["y_val"],
        out_val=arrays["out_val"],
        y_test=arrays["y_test"],
        out_test=arrays["out_test"],
        y_train=arrays.get("y_train"),
        classes=tuple(str(c) for c in arrays.get("classes", ())),
    )


def study_record(study: Study) -> StudyRecord:
    """Build the record of a stored study (reads every trial's predictions once)."""
    from payoff.study._storage import artifact_store

    frame = study.trials_frame()
    numbers = set(frame["number"]) if not frame.empty else set()
    curves: dict[int, tuple[Mapping[str, float], ...]] = {}
    predictions: dict[int, Predictions] = {}
    store = None
    for t in study.trials():
        if t.number not in numbers:
            continue
        curves[t.number] = tuple(json.loads(t.user_attrs.get("curve", "[]")))
        artifact = t.user_attrs.get("predictions_artifact")
        if artifact is None:
            continue
        store = store or artifact_store(study.storage, study.artifacts)
        try:
            predictions[t.number] = read_predictions(store, artifact)
        except (OSError, KeyError, ValueError):
            continue  # an artifact folder moved or pruned: value falls back to the metric
    attrs = study.optuna.user_attrs
    n_available = attrs.get("n_train_available")
    return StudyRecord(
        name=study.name,
        config=study.config,
        trials=frame,
        curves=curves,
        predictions=predictions,
        serving=attrs.get("serving"),
        pilot=attrs.get("pilot"),
        n_train_available=int(n_available) if n_available is not None else None,
    )
