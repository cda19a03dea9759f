"""Export a trial's model to ONNX (fp32 or int8) or TorchScript, checked against the trained
model."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from payoff._errors import ConfigError
from payoff._files import safe_stem, write_atomic
from payoff.serve._model import TrainedModel, load_trained

if TYPE_CHECKING:
    from payoff.study import Study

OPSET = 17
TOLERANCE = 1e-4
"""Largest absolute difference allowed between exported and PyTorch outputs
(probabilities for classification, values for regression)."""
INT8_TOLERANCE = 0.1
"""Largest difference allowed between an int8 model's outputs and PyTorch's: in probability
for classification; for regression, in standard deviations of PyTorch's outputs on the
checked rows. Looser than `TOLERANCE`: int8 weights and activations round every product."""


class ExportFormat(StrEnum):
    """A format a model can be exported to."""

    ONNX = "onnx"
    TORCHSCRIPT = "torchscript"


class Quantization(StrEnum):
    """A quantisation of an ONNX model: ``int8`` (ONNX Runtime dynamic quantisation)."""

    INT8 = "int8"


def parse_quantize(quantize: str | None) -> Quantization | None:
    """Return the quantisation ``quantize`` names (``None``: fp32).

    Raises:
        ConfigError: not a known quantisation.
    """
    if quantize is None:
        return None
    try:
        return Quantization(quantize)
    except ValueError:
        raise ConfigError(
            f"unknown --quantize {quantize!r}; use one of: "
            f"{', '.join(q.value for q in Quantization)}, or leave --quantize out for fp32."
        ) from None


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
        quantize: ``"int8"`` for a quantised model, else ``None`` (fp32).
        agreement: Fraction of the checked rows whose predicted class is the PyTorch
            model's (classification), else ``None``.
        size_bytes: Bytes written.
    """

    path: Path
    format: str
    trial: int
    max_abs_diff: float
    tolerance: float
    n_checked: int
    quantize: str | None = None
    agreement: float | None = None
    size_bytes: int = 0


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


@dataclass(frozen=True, slots=True)
class OutputCheck:
    """How an exported model's outputs compare with PyTorch's on the test set.

    Attributes:
        max_abs_diff: Largest absolute difference.
        tolerance: The largest difference that was allowed.
        n_checked: Rows compared.
        agreement: Fraction of rows with PyTorch's predicted class (classification),
            else ``None``.
    """

    max_abs_diff: float
    tolerance: float
    n_checked: int
    agreement: float | None


def check_outputs(
    model: TrainedModel,
    run: object,
    *,
    tolerance: float = TOLERANCE,
    what: str = "ONNX",
    relative: bool = False,
) -> OutputCheck:
    """Compare ``run(X)`` with the PyTorch outputs on the whole test set.

    Args:
        model: The trained model.
        run: Encoded rows to outputs, as the PyTorch model's.
        tolerance: The largest absolute difference allowed.
        what: The model's name in messages.
        relative: For regression, ``tolerance`` is in standard deviations of PyTorch's
            outputs (see `INT8_TOLERANCE`); classification outputs stay probabilities.

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
    allowed, unit = tolerance, ""
    if relative and model.kind != "classification":
        std = float(np.std(expected)) if expected.size else 0.0
        allowed, unit = tolerance * (std or 1.0), f" = {tolerance:g} x the outputs' std"
    if diff > allowed:
        hint = " Leave out --quantize to use it in fp32." if what.startswith("int8") else ""
        raise ConfigError(
            f"the {what} model differs from the trained PyTorch model by {diff:.3g} "
            f"(tolerance {allowed:.3g}{unit}) on the test set; not exported.{hint}"
        )
    agreement = None
    if model.kind == "classification" and len(X):
        agreement = float(np.mean(got.argmax(axis=1) == expected.argmax(axis=1)))
    return OutputCheck(diff, allowed, len(X), agreement)


def int8_bytes(fp32: bytes) -> bytes:
    """Return an fp32 ONNX model with its Linear (MatMul/Gemm) weights quantised to int8.

    The ``compression: int8`` lever's quantisation: ONNX Runtime's ``quantize_dynamic``,
    a scale per output channel, activations quantised on each call, Conv layers kept fp32.
    """
    from payoff.serve._quantize import quantize_int8

    return quantize_int8(fp32)


def served_model(
    model: TrainedModel,
    quantize: str | None = None,
    *,
    tolerance: float | None = None,
    n_threads: int = 0,
) -> tuple[bytes, Any, OutputCheck]:
    """Return an ONNX model, its ONNX Runtime session and its check against PyTorch.

    The fp32 export must match PyTorch within `TOLERANCE`; with ``quantize="int8"``,
    its int8 quantisation must then match within `INT8_TOLERANCE`, so what int8 adds is
    quantisation's. ``tolerance`` replaces the last model's bound; ``n_threads`` sets the
    session's intra-op threads (0: ONNX Runtime's default, one a core).

    Raises:
        ConfigError: unknown ``quantize``, or a model differs from PyTorch's.
    """
    quantization = parse_quantize(quantize)
    data = onnx_bytes(model)
    session: Any = onnx_session(data, n_threads=n_threads)
    fp32_tolerance = TOLERANCE if tolerance is None or quantization else tolerance
    check = check_outputs(
        model, lambda X: session.run(None, {"x": X})[0], tolerance=fp32_tolerance
    )
    if quantization is Quantization.INT8:
        data = int8_bytes(data)
        session = onnx_session(data, n_threads=n_threads)
        check = check_outputs(
            model,
            lambda X: session.run(None, {"x": X})[0],
            tolerance=INT8_TOLERANCE if tolerance is None else tolerance,
            what="int8 ONNX",
            relative=True,
        )
    return data, session, check


def export_model(
    study: Study,
    trial: str | int = "best",
    path: str | Path | None = None,
    *,
    format: str = "onnx",
    tolerance: float | None = None,
    quantize: str | None = None,
) -> ExportResult:
    """Export a trial's model with a dynamic batch axis and check it on the test set.

    Args:
        study: The study.
        trial: ``"best"`` (the COMPLETE trial with the best value) or a trial number.
        path: Where to write [default: ``STUDY-trial-N.onnx`` (``-int8.onnx``, ``.pt``)
            here].
        format: ``"onnx"`` (opset 17, checked with ONNX Runtime) or ``"torchscript"``.
        tolerance: The largest output difference allowed [default: `TOLERANCE`, or
            `INT8_TOLERANCE` with ``quantize="int8"``].
        quantize: ``"int8"``: write the ONNX model with int8 Linear weights (dynamic
            quantisation), checked within `INT8_TOLERANCE`, its class agreement reported.

    Raises:
        ConfigError: unknown format, quantisation or trial, quantisation of a
            TorchScript export, or the exported model's outputs differ from the trained
            model's by more than the tolerance.
    """
    try:
        fmt = ExportFormat(format)
    except ValueError:
        raise ConfigError(
            f"unknown export format {format!r}; use one of: "
            f"{', '.join(f.value for f in ExportFormat)}."
        ) from None
    quantization = parse_quantize(quantize)
    if quantization is not None and fmt is not ExportFormat.ONNX:
        raise ConfigError(
            f"--quantize {quantization.value} needs --format onnx (ONNX Runtime quantises "
            f"the model), got --format {fmt.value}."
        )
    model = load_trained(study, trial)
    suffix = ".onnx" if fmt is ExportFormat.ONNX else ".pt"
    if quantization is not None:
        suffix = f"-{quantization.value}{suffix}"
    out = (
        Path(path)
        if path is not None
        else Path(f"{safe_stem(study.optuna.study_name)}-trial-{model.trial}{suffix}")
    )
    agreement = None
    if fmt is ExportFormat.ONNX:
        data, _, check = served_model(model, quantize, tolerance=tolerance)
        diff, tolerance, n = check.max_abs_diff, check.tolerance, check.n_checked
        agreement = check.agreement
    else:
        tolerance = TOLERANCE if tolerance is None else tolerance
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

        script = check_outputs(model, run, tolerance=tolerance, what="TorchScript")
        diff, n = script.max_abs_diff, script.n_checked
    write_atomic(out, data, what="the exported model")
    return ExportResult(
        path=out,
        format=fmt.value,
        trial=model.trial,
        max_abs_diff=diff,
        tolerance=tolerance,
        n_checked=n,
        quantize=None if quantization is None else quantization.value,
        agreement=agreement,
        size_bytes=len(data),
    )
