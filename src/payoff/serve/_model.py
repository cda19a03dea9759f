"""A stored trial's trained model, rebuilt from its weights, ready to export or serve."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from payoff._errors import ConfigError
from payoff._files import safe_stem

if TYPE_CHECKING:
    import optuna
    import pandas as pd
    import torch

    from payoff.analysis._outcomes import Outcome
    from payoff.study import Study, StudyRecord
    from payoff.tasks import Task

_logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class TrainedModel:
    """A trial's model in eval mode, with the task it was trained on.

    Attributes:
        trial: The trial's number.
        module: The PyTorch model; outputs probabilities (classification, softmax
            included) or values (regression), shape ``(batch, n_outputs)``.
        task: The task: its preprocessor, feature names, classes and test set.
    """

    trial: int
    module: torch.nn.Module
    task: Task

    @property
    def kind(self) -> str:
        """Return ``"classification"`` or ``"regression"``."""
        return self.task.kind

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Return the eager PyTorch outputs for encoded rows ``X``."""
        import torch

        with torch.inference_mode():
            return self.module(torch.from_numpy(np.ascontiguousarray(X, np.float32))).numpy()


def resolve_trial(study: Study, trial: str | int = "best") -> optuna.trial.FrozenTrial:
    """Return the trial ``trial`` names: ``"best"`` (the best validation value of all),
    ``"recommended"`` (the best validation value among the seeds of the setting
    `Study.recommend` names) or a trial number.

    Raises:
        ConfigError: no such trial, it did not complete, or it kept no weights.
    """
    from optuna.study import StudyDirection
    from optuna.trial import TrialState

    complete = [
        t for t in study.optuna.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE
    ]
    if isinstance(trial, str) and trial not in ("best", "recommended"):
        try:
            trial = int(trial)
        except ValueError:
            raise ConfigError(
                f"trial must be 'best', 'recommended' or a trial number, got {trial!r}."
            ) from None
    if trial == "recommended":
        choice = study.recommend(n_draws=1000).recommended
        if choice is None or choice.kind != "measured":
            raise ConfigError(
                f"study {study.optuna.study_name!r} recommends no measured setting "
                f"({'none fits' if choice is None else 'a forecast one'}): serve 'best' or "
                "a trial number."
            )
        complete = [t for t in complete if t.number in set(choice.trials)]
    if trial in ("best", "recommended"):
        scored = [t for t in complete if t.value is not None and np.isfinite(t.value)]
        if not scored:
            raise ConfigError(f"study {study.optuna.study_name!r} has no completed trial.")
        maximize = study.optuna.direction == StudyDirection.MAXIMIZE
        chosen = (max if maximize else min)(scored, key=lambda t: float(t.value))  # type: ignore[arg-type]
    else:
        by_number = {t.number: t for t in study.optuna.get_trials(deepcopy=False)}
        if trial not in by_number:
            raise ConfigError(
                f"study {study.optuna.study_name!r} has no trial {trial}; it has trials "
                f"0-{max(by_number, default=-1)}."
            )
        chosen = by_number[int(trial)]
        if chosen.state != TrialState.COMPLETE:
            raise ConfigError(f"trial {trial} is {chosen.state.name}, not COMPLETE.")
    if "weights_artifact" not in chosen.user_attrs:
        raise ConfigError(
            f"trial {chosen.number} kept no weights (function trials do not); only built-in "
            "trials can be exported or served."
        )
    return chosen


def load_trained(study: Study, trial: str | int = "best") -> TrainedModel:
    """Rebuild a trial's model from its stored weights.

    Raises:
        ConfigError: see `resolve_trial`; or the weights do not fit the model.
    """
    import torch

    from payoff.levers import model_size
    from payoff.study._builtin import task_of
    from payoff.study._storage import artifact_store, open_artifact
    from payoff.study._study import trial_params
    from payoff.tasks import build_model

    frozen = resolve_trial(study, trial)
    config = study.config
    task = task_of(config)
    if task.modality == "text":
        raise ConfigError(
            f"study {study.name!r} is a text task; export and serve take table, image and "
            "signal tasks for now (a text model needs its tokenizer in the service)."
        )
    family = config.task.model
    assert family is not None
    net = build_model(
        family,
        model_size(trial_params(frozen).get("model", config.train.model)),
        n_features=task.n_features,
        n_outputs=task.n_classes if task.kind == "classification" else 1,
        image_shape=task.image_shape,
        dropout=config.train.dropout,
    )
    store = artifact_store(study.storage, study.artifacts)
    weights = frozen.user_attrs["weights_artifact"]
    with open_artifact(store, weights, f"trial {frozen.number}'s weights") as f:
        state = torch.load(f, weights_only=True)
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise ConfigError(f"trial {frozen.number}'s weights do not fit its model: {err}") from err
    head: torch.nn.Module = (
        torch.nn.Softmax(dim=1) if task.kind == "classification" else torch.nn.Identity()
    )
    module = torch.nn.Sequential(net, head).eval()
    return TrainedModel(trial=frozen.number, module=module, task=task)


def raw_frame(task: Task, X: np.ndarray) -> pd.DataFrame:
    """Return raw feature rows (as a client would send them) that encode to about ``X``.

    Numeric columns are un-standardised; categorical ones decoded from their one-hot
    columns. Used for example payloads and as the training reference for drift.
    """
    import pandas as pd

    pre = task.preprocessor
    columns: dict[str, Any] = {}
    start = 0
    for name, transformer, cols in pre.transformers_:
        if name == "remainder" or transformer == "drop":
            continue
        width = len(transformer.get_feature_names_out())
        block = X[:, start : start + width].astype(np.float64)
        start += width
        if name == "numeric":
            values = transformer.named_steps["scale"].inverse_transform(block)
            for i, col in enumerate(cols):
                columns[col] = values[:, i]
        else:
            onehot = transformer.named_steps["onehot"]
            decoded = onehot.inverse_transform(block)
            fill = transformer.named_steps["impute"].statistics_
            for i, col in enumerate(cols):
                column = decoded[:, i].astype(object)
                column[pd.isna(column)] = fill[i]
                columns[col] = [str(v) for v in column]
    return pd.DataFrame({name: columns[name] for name in task.feature_names})


def categorical_columns(task: Task) -> frozenset[str]:
    """Return the names of the task's categorical (string-valued) raw features."""
    return frozenset(task.notes.get("categorical_columns", ()))


def decision_of(record: StudyRecord, trial: int) -> Outcome | None:
    """Return the rule the study's ROI priced ``trial``'s decisions by (its ``decide``), or
    None (the most probable class) when the value analysis cannot say."""
    from payoff.analysis._value import decision_rule

    try:
        return decision_rule(record, trial)
    except ConfigError as err:
        _logger.warning("predicting the most probable class: %s", err)
        return None


def default_log_path(study: Study) -> Path:
    """Return the prediction log's default path: beside a SQLite study, else here."""
    from payoff.study._storage import _sqlite_path

    base = _sqlite_path(study.storage)
    folder = base.parent if base else Path(".")
    return folder / f"{safe_stem(study.optuna.study_name)}-predictions.db"
