"""Encode request records with NumPy from the fitted preprocessor's learned parameters.

The service used to build a pandas DataFrame per request and run the task's scikit-learn
``ColumnTransformer`` on it: about 10 ms a request, most of a small model's serving time.
`RecordEncoder` does the same arithmetic straight from what the transformer learned:

- numeric columns: missing values (NaN) filled with the imputer's ``statistics_``, then
  ``(x - mean_) / scale_`` in float64, as ``StandardScaler.transform`` computes it;
- categorical columns: each value as ``str``, a missing one filled with the imputer's
  most frequent string, then a dictionary look-up of its one-hot column, built from the
  encoder's ``categories_`` and ``infrequent_categories_`` (unknown: all zeros, as
  ``handle_unknown="ignore"`` does);

and casts the result to float32 as the service did. Before it is used, its output is
compared bit for bit with the transformer's on test-set rows, every known category, an
unknown one and missing values; a preprocessor it does not recognise, or any difference,
and it logs a warning and uses the transformer instead.
"""

from __future__ import annotations

import logging
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from payoff.tasks import Task

_logger = logging.getLogger(__name__)

_UNKNOWN = "\x00payoff-unknown-category"
_N_CHECK_ROWS = 256


class _Unsupported(Exception):
    """The preprocessor is not the one payoff's tasks fit; the encoder cannot mirror it."""


def _one(column: str) -> Callable[[Mapping[str, Any]], tuple[Any]]:
    return lambda record: (record[column],)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


class _Numeric:
    """float -> impute -> standardise, for the columns ``columns`` (output ``out``)."""

    def __init__(self, pipeline: Any, columns: list[str], out: slice) -> None:
        from sklearn.impute import SimpleImputer
        from sklearn.preprocessing import FunctionTransformer, StandardScaler

        from payoff.tasks._datasets import _to_float

        steps = [step for _, step in pipeline.steps]
        if not (
            len(steps) == 3
            and isinstance(steps[0], FunctionTransformer)
            and steps[0].func is _to_float
            and isinstance(steps[1], SimpleImputer)
            and not steps[1].add_indicator
            and _missing(steps[1].missing_values)
            and isinstance(steps[2], StandardScaler)
        ):
            raise _Unsupported(f"numeric pipeline {pipeline!r}")
        imputer, scaler = steps[1], steps[2]
        self.fill = np.asarray(imputer.statistics_, dtype=np.float64)
        if self.fill.shape != (len(columns),) or not np.all(np.isfinite(self.fill)):
            raise _Unsupported("numeric imputer statistics")
        self.mean = np.asarray(scaler.mean_, np.float64) if scaler.with_mean else None
        self.scale = np.asarray(scaler.scale_, np.float64) if scaler.with_std else None
        self.columns = columns
        self.out = out
        # itemgetter of several keys returns a tuple, of one key the bare value.
        self.row = operator.itemgetter(*columns) if len(columns) > 1 else _one(columns[0])

    def encode(self, records: Sequence[Mapping[str, Any]], X: np.ndarray) -> None:
        # None becomes NaN here, as in the DataFrame the transformer was given.
        values = np.array([self.row(r) for r in records], dtype=np.float64)
        missing = np.isnan(values)
        if missing.any():
            values[missing] = self.fill[np.nonzero(missing)[1]]
        if self.mean is not None:
            values -= self.mean
        if self.scale is not None:
            values /= self.scale
        X[:, self.out] = values


class _Categorical:
    """str -> impute -> one-hot, for the columns ``columns`` (output ``out``)."""

    def __init__(self, pipeline: Any, columns: list[str], out: slice) -> None:
        from sklearn.impute import SimpleImputer
        from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

        from payoff.tasks._datasets import _to_category_strings

        steps = [step for _, step in pipeline.steps]
        if not (
            len(steps) == 3
            and isinstance(steps[0], FunctionTransformer)
            and steps[0].func is _to_category_strings
            and isinstance(steps[1], SimpleImputer)
            and not steps[1].add_indicator
            and _missing(steps[1].missing_values)
            and isinstance(steps[2], OneHotEncoder)
            and steps[2].drop is None
            and steps[2].handle_unknown == "ignore"
            and not steps[2].sparse_output
        ):
            raise _Unsupported(f"categorical pipeline {pipeline!r}")
        imputer, onehot = steps[1], steps[2]
        self.fill = list(imputer.statistics_)
        if len(self.fill) != len(columns):
            raise _Unsupported("categorical imputer statistics")
        # One dictionary a column: category -> its one-hot column in the output. The
        # encoder's output for a column is its frequent categories in ``categories_`` order,
        # then one column for all its infrequent ones.
        self.lookup: list[dict[Any, int]] = []
        start = out.start
        for categories, infrequent in zip(
            onehot.categories_, onehot.infrequent_categories_, strict=True
        ):
            rare = set() if infrequent is None else set(infrequent.tolist())
            frequent = [c for c in categories.tolist() if c not in rare]
            lookup = {c: start + k for k, c in enumerate(frequent)}
            for c in rare:
                lookup[c] = start + len(frequent)
            self.lookup.append(lookup)
            start += len(frequent) + (1 if rare else 0)
        if start != out.stop:
            raise _Unsupported("one-hot widths")
        self.columns = columns

    def encode(self, records: Sequence[Mapping[str, Any]], X: np.ndarray) -> None:
        rows: list[int] = []
        cols: list[int] = []
        for name, lookup, fill in zip(self.columns, self.lookup, self.fill, strict=True):
            for i, record in enumerate(records):
                value = record[name]
                key = fill if _missing(value) else str(value)
                col = lookup.get(key)
                if col is not None:
                    rows.append(i)
                    cols.append(col)
        X[rows, cols] = 1.0


class RecordEncoder:
    """Turn raw records (feature name -> value) into the model's float32 input rows.

    The records are those the service has validated: a float for each numeric feature and
    a string for each categorical one (``None`` or NaN count as missing and are imputed).
    `encode` returns exactly what ``task.preprocessor.transform`` returns for the same
    rows in a DataFrame, cast to float32.

    Attributes:
        fast: Whether the NumPy path is in use (else the transformer is, see the module).
    """

    def __init__(self, task: Task) -> None:
        self.task = task
        self.features = list(task.feature_names)
        self._parts: list[_Numeric | _Categorical] | None = None
        self._width = 0
        try:
            self._parts, self._width = self._mirror(task.preprocessor)
        except _Unsupported as err:
            _logger.warning("encoding records with the scikit-learn transformer: %s", err)
            return
        # The checks above pin the pipelines' steps; this pins the arithmetic, on real rows.
        difference = self._difference()
        if difference:
            _logger.warning(
                "encoding records with the scikit-learn transformer: the NumPy encoder "
                "differs from it (%s)",
                difference,
            )
            self._parts = None

    @property
    def fast(self) -> bool:
        """Return whether records are encoded with NumPy rather than the transformer."""
        return self._parts is not None

    def encode(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Return the encoded rows, float32, C-contiguous, shape ``(len(records), width)``.

        Values too large to standardise become ``inf``, as with the transformer.
        """
        if self._parts is None:
            return self.transform(records)
        X = np.zeros((len(records), self._width), dtype=np.float32)
        with np.errstate(over="ignore"):  # float32 overflow -> inf, refused by the caller
            for part in self._parts:
                part.encode(records, X)
        return X

    def transform(self, records: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """Return the rows encoded by the transformer itself (the reference)."""
        import pandas as pd

        frame = pd.DataFrame.from_records(list(records), columns=self.features)
        with np.errstate(all="ignore"):
            return np.ascontiguousarray(self.task.preprocessor.transform(frame), dtype=np.float32)

    @staticmethod
    def _mirror(pre: Any) -> tuple[list[_Numeric | _Categorical], int]:
        from sklearn.compose import ColumnTransformer
        from sklearn.pipeline import Pipeline

        if not isinstance(pre, ColumnTransformer) or not hasattr(pre, "transformers_"):
            raise _Unsupported(f"preprocessor {type(pre).__name__}")
        parts: list[_Numeric | _Categorical] = []
        for name, transformer, columns in pre.transformers_:
            if transformer == "drop":
                continue
            out = pre.output_indices_[name]
            if out.stop == out.start:
                continue
            if not isinstance(transformer, Pipeline) or name not in ("numeric", "categorical"):
                raise _Unsupported(f"transformer {name!r}")
            kind = _Numeric if name == "numeric" else _Categorical
            parts.append(kind(transformer, [str(c) for c in columns], out))
        width = max((s.stop for s in pre.output_indices_.values()), default=0)
        return parts, width

    def _difference(self) -> str:
        """Return how the NumPy encoder differs from the transformer, or "" when it does not."""
        from payoff.serve._model import categorical_columns, raw_frame

        task = self.task
        X = task.X_test if len(task.X_test) else task.X_train
        records: list[dict[str, Any]] = raw_frame(task, X[:_N_CHECK_ROWS]).to_dict("records")
        if not records:
            return ""
        categorical = categorical_columns(task)
        base = records[0]
        for part in self._parts or ():
            if isinstance(part, _Categorical):
                for name, lookup in zip(part.columns, part.lookup, strict=True):
                    records += [{**base, name: c} for c in lookup if isinstance(c, str)]
        records.append({f: _UNKNOWN if f in categorical else base[f] for f in self.features})
        records.append({f: None for f in self.features})
        fast = self.encode(records)
        slow = self.transform(records)
        if fast.shape != slow.shape:
            return f"shape {fast.shape} against {slow.shape}"
        same = (fast == slow) | (np.isnan(fast) & np.isnan(slow))
        if not same.all():
            row, col = np.argwhere(~same)[0]
            return f"row {row} column {col}: {fast[row, col]!r} against {slow[row, col]!r}"
        return ""
