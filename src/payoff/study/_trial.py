"""The trial a trial function receives: its setting, its seed, and where to report."""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from payoff._errors import TrialError

if TYPE_CHECKING:
    import optuna

    from payoff.config import StudyConfig

# Reported values reach the storage at most this often while a trial runs (live curves in
# optuna-dashboard), and all of them once it ends: a database commit per epoch was a fifth
# of a small trial's metered time.
_FLUSH_EVERY_S = 1.0


class Trial:
    """One running trial, as a trial function sees it (built-in or the user's own).

    Example:
        >>> @payoff.trial_function
        ... def train(trial):
        ...     n = trial.lever("data")
        ...     trial.report(epoch=1, accuracy=0.9)
        ...     return {"accuracy": 0.9}
    """

    def __init__(
        self,
        *,
        optuna_trial: optuna.Trial,
        setting: Mapping[str, Any],
        seed: int,
        config: StudyConfig,
        artifact_store: Any,
    ) -> None:
        self._trial = optuna_trial
        self._setting = dict(setting)
        self._artifact_store = artifact_store
        self.seed = seed
        self.config = config
        self.curve: list[dict[str, float]] = []
        self.fields: dict[str, Any] = {}
        self._pending: list[tuple[int, float]] = []
        self._flushed_at = time.monotonic()

    @property
    def number(self) -> int:
        """The trial's number in the study."""
        return self._trial.number

    @property
    def setting(self) -> dict[str, Any]:
        """Every lever's setting for this trial."""
        return dict(self._setting)

    def lever(self, name: str, default: Any = None) -> Any:
        """Return this trial's setting of ``name`` (``default`` where the study holds it fixed).

        Raises:
            TrialError: the study does not vary ``name`` and no default was given.
        """
        if name in self._setting:
            return self._setting[name]
        if default is not None:
            return default
        raise TrialError(
            f"lever {name!r} is not varied by this study (levers: {', '.join(self._setting)}); "
            "pass a default: trial.lever(name, default)."
        )

    def report(self, epoch: int, **metrics: float) -> None:
        """Record the metrics after an epoch; the primary metric becomes the trial's curve."""
        self.curve.append({"epoch": epoch, **{k: float(v) for k, v in metrics.items()}})
        metric = self.config.task.metric
        for name in (f"val_{metric}", metric):
            value = metrics.get(name)
            if value is not None and math.isfinite(value):
                self._pending.append((epoch, float(value)))
                break
        if time.monotonic() - self._flushed_at >= _FLUSH_EVERY_S:
            self.flush()

    def flush(self) -> None:
        """Write the reported values the storage does not hold yet (the runner calls it)."""
        for epoch, value in self._pending:
            self._trial.report(value, step=epoch)
        self._pending.clear()
        self._flushed_at = time.monotonic()

    def record(self, **fields: Any) -> None:
        """Add fields to the trial's ledger (e.g. ``n_train=500``, ``flops=1.2e9``)."""
        self.fields.update(fields)

    def save_weights(self, state: Any) -> str:
        """Keep the trained weights (anything ``torch.save`` takes); return the artifact id."""
        import torch  # only trials that keep weights need torch
        from optuna.artifacts import upload_artifact

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"trial-{self.number}.pt"
            torch.save(state, path)
            artifact_id = upload_artifact(
                artifact_store=self._artifact_store,
                file_path=str(path),
                study_or_trial=self._trial,
            )
        self.fields["weights_artifact"] = artifact_id
        return artifact_id

    def save_predictions(
        self,
        *,
        val: tuple[Any, Any],
        test: tuple[Any, Any],
        y_train: Any = None,
        classes: Sequence[str] = (),
    ) -> str:
        """Keep what the model predicts on the validation and test splits; return the id.

        Money is priced from these (a value-maximising threshold chosen on ``val`` and
        applied to ``test``, the expected-cost class under a cost matrix, the error
        distribution of a regression), not from one accuracy figure.

        Args:
            val: ``(y_true, output)``: class indices and class probabilities (one column a
                class), or targets and predictions for a regression.
            test: The same for the test split.
            y_train: The training labels, for the ``majority`` baseline (its majority class,
                or its mean for a regression).
            classes: Class names in index order (the keys a cost matrix may use).
        """
        from optuna.artifacts import upload_artifact

        arrays: dict[str, np.ndarray] = {}
        for split, (y, out) in (("val", val), ("test", test)):
            arrays[f"y_{split}"] = np.asarray(y)
            arrays[f"out_{split}"] = np.asarray(out, dtype=np.float32)
        if y_train is not None:
            arrays["y_train"] = np.asarray(y_train)
        arrays["classes"] = np.asarray([str(c) for c in classes], dtype=str)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / f"trial-{self.number}-predictions.npz"
            np.savez_compressed(path, **arrays)
            artifact_id = upload_artifact(
                artifact_store=self._artifact_store,
                file_path=str(path),
                study_or_trial=self._trial,
            )
        self.fields["predictions_artifact"] = artifact_id
        return artifact_id
