"""Feedback: newly labelled rows (often served requests, labelled later) join the training
set, so the next run trains on them and prices them as labels."""

from __future__ import annotations

import dataclasses
import datetime
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from payoff._errors import ConfigError
from payoff.study._storage import study_lock

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from payoff.study._study import Study
    from payoff.tasks import Task

_ATTR = "feedback"


@dataclass(frozen=True, slots=True)
class FeedbackBatch:
    """One file of labelled rows added to a study.

    Attributes:
        file: The file the rows came from.
        n_rows: Rows added.
        usd_per_label: What one label cost.
        cost_usd_labels: What the batch's labels cost.
        data_version: The study's data version after this batch (1 for the first).
        n_train: Training rows the next run has, with every batch so far.
    """

    file: str
    n_rows: int
    usd_per_label: float
    cost_usd_labels: float
    data_version: int
    n_train: int


def batches(study: optuna.Study) -> list[dict[str, Any]]:
    """Return the feedback batches stored on a study, oldest first."""
    return list(study.user_attrs.get(_ATTR, []))


def data_version(study: optuna.Study) -> int:
    """Return how many feedback batches the study's training set has grown by."""
    return len(batches(study))


def records(study: optuna.Study) -> list[dict[str, Any]]:
    """Return every feedback row (features and ``label``) of a study."""
    return [row for batch in batches(study) for row in batch["records"]]


def with_feedback(task: Task, rows: Sequence[Mapping[str, Any]]) -> Task:
    """Return ``task`` with the labelled ``rows`` appended to its training split.

    Rows are encoded with the task's fitted preprocessor (as the server encodes requests);
    validation and test splits are unchanged, so returns stay comparable across versions.
    """
    if not rows:
        return task
    import pandas as pd

    frame = pd.DataFrame(list(rows))
    X = np.asarray(task.preprocessor.transform(frame[list(task.feature_names)]), np.float32)
    if task.kind == "classification":
        index = {name: i for i, name in enumerate(task.classes)}
        y = np.array([index[str(v)] for v in frame["label"]], dtype=task.y_train.dtype)
    else:
        y = frame["label"].to_numpy(dtype=task.y_train.dtype)
    notes = {**task.notes, "n_feedback_rows": len(frame)}
    return dataclasses.replace(
        task,
        X_train=np.concatenate([task.X_train, X]),
        y_train=np.concatenate([task.y_train, y]),
        notes=notes,
    )


def _read(path: Path) -> pd.DataFrame:
    import pandas as pd

    if not path.is_file():
        raise ConfigError(f"feedback file {str(path)!r} does not exist; give a CSV file.")
    try:
        return pd.read_csv(path)
    except Exception as err:  # any reader failure is a bad input file
        raise ConfigError(f"cannot read feedback file {str(path)!r} as CSV: {err}") from err


def _check(frame: pd.DataFrame, task: Task, label: str, path: Path) -> list[dict[str, Any]]:
    """Return the rows as records (features and ``label``), or say what is wrong with them."""
    import pandas as pd

    if frame.empty:
        raise ConfigError(f"{path}: no rows; a feedback file needs labelled rows.")
    features = list(task.feature_names)
    missing = [c for c in [*features, label] if c not in frame.columns]
    extra = [c for c in frame.columns if c not in features and c != label]
    if missing or extra:
        raise ConfigError(
            f"{path}: columns must be the task's features and the label {label!r}"
            + (f"; missing: {', '.join(map(str, missing))}" if missing else "")
            + (f"; unknown: {', '.join(map(str, extra))}" if extra else "")
            + ". Use --label to name the label column."
        )
    labels = frame[label]
    if labels.isna().any():
        rows = [int(i) + 2 for i in np.flatnonzero(labels.isna().to_numpy())[:5]]
        raise ConfigError(f"{path}: rows without a label (lines {rows}); label them or drop them.")
    if task.kind == "classification":
        given = labels.map(_class_name)
        unknown = sorted(set(given) - set(task.classes))
        if unknown:
            raise ConfigError(
                f"{path}: labels {unknown[:5]} are not classes of the task "
                f"({', '.join(task.classes)}); a new class needs a new study."
            )
        labels = given
    else:
        values = pd.to_numeric(labels, errors="coerce")
        if values.isna().any() or not np.isfinite(values.to_numpy(dtype=float)).all():
            raise ConfigError(f"{path}: the label {label!r} must be a finite number on every row.")
        labels = values.astype(float)
    try:
        task.preprocessor.transform(frame[features])
    except Exception as err:  # wrong types the preprocessor cannot encode
        raise ConfigError(
            f"{path}: the features cannot be encoded like the training data: {err}"
        ) from err
    out = frame[features].astype(object).where(frame[features].notna(), None)
    recs = out.to_dict(orient="records")
    for rec, value in zip(recs, labels, strict=True):
        rec["label"] = value
    return recs


def _refuse_leaks(
    rows: list[dict[str, Any]],
    task: Task,
    stored: list[dict[str, Any]],
    path: Path,
    allow_new_categories: bool,
) -> None:
    """Refuse rows that would leak or repeat: rows encoding like a training row (feedback
    stored before included), a validation or test row, or another row of the file; and,
    unless allowed, rows with a category never seen in training."""
    import pandas as pd

    frame = pd.DataFrame(rows)[list(task.feature_names)]
    X = np.asarray(task.preprocessor.transform(frame), dtype=np.float32)
    keys = [row.tobytes() for row in X]
    grown = with_feedback(task, [r for b in stored for r in b["records"]])

    splits = {
        "encode like a training row": grown.X_train,
        "are in the validation split": task.X_val,
        "are in the test split": task.X_test,
    }
    seen = {
        what: {row.tobytes() for row in np.asarray(X, dtype=np.float32)}
        for what, X in splits.items()
    }
    # Each row counted once, by the first thing it repeats.
    kinds = dict.fromkeys([*splits, "repeat an earlier row of the file"], 0)
    earlier: set[bytes] = set()
    for k in keys:
        what = next((w for w, known in seen.items() if k in known), None)
        if what is None and k in earlier:
            what = "repeat an earlier row of the file"
        if what is not None:
            kinds[what] += 1
        earlier.add(k)
    new: dict[str, set[str]] = {}
    for name, seen in task.known_categories().items():
        for value in frame[name]:
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                if str(value) not in seen:
                    new.setdefault(name, set()).add(str(value))
    problems = [f"{n} {what}" for what, n in kinds.items() if n]
    if new and not allow_new_categories:
        named = "; ".join(f"{c}: {', '.join(sorted(v)[:5])}" for c, v in new.items())
        problems.append(
            f"categories never seen in training ({named}; pass --allow-new-categories to "
            "train on them)"
        )
    if problems:
        raise ConfigError(
            f"{path}: of {len(rows)} rows, " + "; ".join(problems) + ". A row the model "
            "already trained or is judged on would inflate its measured returns: drop those "
            "rows and run again. Nothing was stored."
        )


def _class_name(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def add_feedback(
    study: Study,
    path: str | Path,
    *,
    label: str | None = None,
    usd_per_label: float | None = None,
    allow_new_categories: bool = False,
) -> FeedbackBatch:
    """Add a CSV of labelled rows to a study's training set, for its next run.

    The file has the task's feature columns (as the server takes them) and a label column
    (``label``, or the study's ``task.label``). The next ``payoff run`` runs the planned
    trials again on the larger training set (earlier results are kept, under their data
    version), and each trial's ledger prices the labels it trains on.

    Rows that encode like a training, validation or test row, or like another row of the
    file, are refused (they would leak into the measured returns), and so are categories
    never seen in training unless ``allow_new_categories``.

    Raises:
        ConfigError: the study has no built-in task, or the file is missing, unreadable,
            does not match the task or has rows that would leak; nothing is stored then.
    """
    from payoff.prices import load_price_book
    from payoff.study._builtin import task_of
    from payoff.study._ledger import labels_usd_per_example

    config = study.config
    if config.task.dataset is None:
        raise ConfigError(
            f"study {study.name!r} runs your own trial function; feed new rows to it directly."
        )
    if usd_per_label is not None and not (math.isfinite(usd_per_label) and usd_per_label >= 0):
        raise ConfigError(f"--usd-per-label must be a non-negative number, got {usd_per_label}.")
    path = Path(path)
    label = label or config.task.label or "label"
    task = task_of(config)
    rows = _check(_read(path), task, label, path)
    price = (
        usd_per_label
        if usd_per_label is not None
        else labels_usd_per_example(config, load_price_book(config.prices))
    )
    # Read, then write the batches under the study's lock: two feedbacks at once must not
    # both become data version 1, one of them lost.
    with study_lock(study.storage, study.name):
        stored = batches(study.optuna)
        _refuse_leaks(rows, task, stored, path, allow_new_categories)
        n_train = len(task.y_train) + sum(b["n_rows"] for b in stored) + len(rows)
        batch = FeedbackBatch(
            file=str(path.resolve()),
            n_rows=len(rows),
            usd_per_label=price,
            cost_usd_labels=price * len(rows),
            data_version=len(stored) + 1,
            n_train=n_train,
        )
        added = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        entry = {**dataclasses.asdict(batch), "added": added, "records": rows}
        study.optuna.set_user_attr(_ATTR, [*stored, entry])
    return batch
