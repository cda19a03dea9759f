"""Export a trial's model to ONNX or TorchScript, checked against the trained model."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from payoff._errors import ConfigError
from payoff.serve._model import TrainedModel, load_trained

if TYPE_CHECKING:
    from payoff.study import Study

OPSET = 17
TOLERANCE = 1e-4
"""Largest absolute difference allowed between exported and PyTorch outputs
(probabilities for classification, values for regression)."""


class ExportFormat(StrEnum):
    """A format a model can be exported to."""

    ONNX = "onnx"
    TORCHSCRIPT = "torchscript"


@dataclass(frozen=True, slots=True)
class ExportResult:
    """An exported model and how closely it reproduces the trained one.

    Attributes:
        path: The written file.
        format: ``"onnx"`` or ``"torchscript"``.
        trial: The trial's number.
        max_abs_diff: Largest absolute output difference over the checked rows.
        tolerance: The difference allowed.
        n_checked: Rows checked: the whole test set.
    """

    path: Path
    format: str
    trial: int
    max_abs_diff: float
    tolerance: float
    n_checked: int


def onnx_bytes(model: TrainedModel) -> bytes:
    """Return the model as ONNX (opset 17), batch axis dynamic, input ``x``, output ``y``."""
    import torch

    buffer = io.BytesIO()
    example = torch.from_numpy(model.task.X_test[:2].copy())
    if len(example) == 0:
        example = torch.zeros((2, model.task.n_features))
    with warnings.catch_warnings():
        # The TorchScript-based exporter needs no onnxscript; torch warns it is legacy.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model.module,
            (example,),
            buffer,
            dynamo=False,
            opset_version=OPSET,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
        )
    return buffer.getvalue()


def onnx_session(data: bytes | str | Path, *, n_threads: int = 0) -> object:
    """Return an ONNX Runtime CPU session for a model (bytes or a file)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if n_threads:
        options.intra_op_num_threads = n_threads
    source = data if isinstance(data, bytes) else str(data)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def check_outputs(
    model: TrainedModel, run: object, *, tolerance: float = TOLERANCE, what: str = "ONNX"
) -> tuple[float, int]:
    """Compare ``run(X)`` with the PyTorch outputs on the whole test set.

    Returns:
        The largest absolute difference and the number of rows checked.

    Raises:
        ConfigError: a difference is over ``tolerance``, or an output is not finite.
    """
    X = model.task.X_test
    if len(X) == 0:
        X = model.task.X_val if len(model.task.X_val) else model.task.X_train
    expected = model.predict(X)
    got = np.asarray(run(X))  # type: ignore[operator]
    if got.shape != expected.shape or not np.all(np.isfinite(got)):
        raise ConfigError(
            f"the {what} model's outputs (shape {got.shape}) do not match PyTorch's "
            f"(shape {expected.shape}) or are not finite."
        )
    diff = float(np.max(np.abs(got - expected))) if got.size else 0.0
    if diff > tolerance:
        raise ConfigError(
            f"the {what} model differs from the trained PyTorch model by {diff:.3g} "
            f"(tolerance {tolerance:g}) on the test set; not exported."
        )
    return diff, len(X)


def export_model(
    study: Study,
    trial: str | int = "best",
    path: str | Path | None = None,
    *,
    format: str = "onnx",
    tolerance: float = TOLERANCE,
) -> ExportResult:
    """Export a trial's model with a dynamic batch axis and check it on the test set.

    Args:
        study: The study.
        trial: ``"best"`` (the COMPLETE trial with the best value) or a trial number.
        path: Where to write [default: ``STUDY-trial-N.onnx`` (or ``.pt``) here].
        format: ``"onnx"`` (opset 17, checked with ONNX Runtime) or ``"torchscript"``.
        tolerance: The largest absolute output difference allowed.

    Raises:
        ConfigError: unknown format or trial, or the exported model's outputs differ
            from the trained model's by more than ``tolerance``.
    """
    try:
        fmt = ExportFormat(format)
    except ValueError:
        raise ConfigError(
            f"unknown export format {format!r}; use one of: "
            f"{', '.join(f.value for f in ExportFormat)}."
        ) from None
    model = load_trained(study, trial)
    suffix = ".onnx" if fmt is ExportFormat.ONNX else ".pt"
    out = (
        Path(path)
        if path is not None
        else Path(f"{study.optuna.study_name}-trial-{model.trial}{suffix}")
    )
    if fmt is ExportFormat.ONNX:
        data = onnx_bytes(model)
        session = onnx_session(data)
        diff, n = check_outputs(
            model,
            lambda X: session.run(None, {"x": X})[0],  # type: ignore[attr-defined]
            tolerance=tolerance,
        )
    else:
        import torch

        example = torch.zeros((2, model.task.n_features))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scripted = torch.jit.trace(model.module, (example,))
        buffer = io.BytesIO()
        torch.jit.save(scripted, buffer)
        data = buffer.getvalue()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loaded = torch.jit.load(io.BytesIO(data))

        def run(X: np.ndarray) -> np.ndarray:
            with torch.inference_mode():
                return loaded(torch.from_numpy(X)).numpy()

        diff, n = check_outputs(model, run, tolerance=tolerance, what="TorchScript")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return ExportResult(
        path=out,
        format=fmt.value,
        trial=model.trial,
        max_abs_diff=diff,
        tolerance=tolerance,
        n_checked=n,
    )
