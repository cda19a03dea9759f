"""The task: a dataset split, cleaned and encoded, ready to train on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

TaskKind = Literal["classification", "regression"]
Modality = Literal["table", "image", "signal", "text"]


@dataclass(frozen=True, eq=False)
class Task:
    """A dataset split into train/validation/test and encoded as float32 matrices.

    Every ``X_*`` is float32 of shape ``(n, n_features)``: missing values imputed,
    categorical columns one-hot encoded and numeric columns standardised, all fitted
    on the training rows only. ``y_*`` holds int64 class indices into ``classes`` for
    classification and float32 targets for regression.

    Attributes:
        name: The dataset spec the task was loaded from, e.g. ``"sklearn:digits"``.
        kind: ``"classification"`` or ``"regression"``.
        feature_names: The raw input columns, before one-hot encoding.
        classes: Class labels as strings, in index order; empty for regression.
        image_shape: ``(channels, height, width)`` when each row is an image, else None.
        preprocessor: The fitted scikit-learn transformer that turns a raw DataFrame
            with the ``feature_names`` columns into ``X`` (for serving).
        notes: The cleaning record: rows read and dropped, values imputed, the split.
        modality: What a row is: ``"table"``, ``"image"``, ``"signal"`` (a 1-D series)
            or ``"text"`` (token ids, so models must embed rather than scale them).
            Derived from ``image_shape`` when not given: ``"image"`` or ``"table"``.
        raw_train: The training rows' raw ``feature_names`` columns, as read (missing
            values kept): the reference drift is measured against. None for text.
        raw_test: The test rows' raw columns, as a client would send them (load tests).
    """

    name: str
    kind: TaskKind
    X_train: np.ndarray = field(repr=False)
    y_train: np.ndarray = field(repr=False)
    X_val: np.ndarray = field(repr=False)
    y_val: np.ndarray = field(repr=False)
    X_test: np.ndarray = field(repr=False)
    y_test: np.ndarray = field(repr=False)
    feature_names: tuple[str, ...] = field(repr=False)
    classes: tuple[str, ...]
    image_shape: tuple[int, int, int] | None
    preprocessor: Any = field(repr=False)
    notes: dict[str, Any] = field(repr=False)
    modality: Modality = None  # type: ignore[assignment]  # filled in by __post_init__
    raw_train: Any = field(default=None, repr=False)  # pandas.DataFrame
    raw_test: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.modality is None:
            derived = "image" if self.image_shape is not None else "table"
            object.__setattr__(self, "modality", derived)

    @property
    def n_features(self) -> int:
        """Return the number of encoded input columns (the models' input width)."""
        return int(self.X_train.shape[1])

    def known_categories(self) -> dict[str, frozenset[str]]:
        """Return each categorical feature's categories seen in training, as strings."""
        for name, transformer, columns in getattr(self.preprocessor, "transformers_", ()):
            if name == "categorical" and hasattr(transformer, "named_steps"):
                onehot = transformer.named_steps["onehot"]
                return {
                    str(c): frozenset(str(v) for v in cats)
                    for c, cats in zip(columns, onehot.categories_, strict=True)
                }
        return {}

    @property
    def n_classes(self) -> int:
        """Return the number of classes; 0 for regression."""
        return len(self.classes)
