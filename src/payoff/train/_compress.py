"""Compress a trained model: L1 magnitude pruning (optionally fine-tuned) or int8 quantisation.

The ``compression`` lever's settings:

- ``none``: the trained fp32 model.
- ``prune-N`` (0 < N < 100): N% of the weights of every Linear and Conv layer with the
  smallest magnitude set to zero (``torch.nn.utils.prune``), made permanent. Biases stay.
- ``prune-N-ft``: the same, then fine-tuned by a callback with the pruning mask held fixed,
  so the zeros stay zeros.
- ``int8``: ONNX Runtime dynamic quantisation: Linear weights stored in 8 bits with a scale
  and zero point per output channel, activations quantised to 8 bits on every call; Conv
  layers stay fp32. The model then runs in ONNX Runtime (PyTorch's eager quantisation is
  deprecated and warns).

Dense ``torch.save`` files do not shrink when weights become zero, so a pruned model's size
is measured on a serialisation that gains from zeros: zlib (level 9) of its ``torch.save``d
state dict; the unpruned size is measured the same way.
"""

from __future__ import annotations

import copy
import difflib
import io
import math
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune

from payoff._errors import ConfigError
from payoff.returns import InferenceReading, measure_inference
from payoff.train._loop import predict, score

CompressionKind = Literal["none", "prune", "int8"]
PruneScope = Literal["layer", "global"]

COMPRESSION_SETTINGS = ("none", "int8", "prune-N", "prune-N-ft")
"""The forms a ``compression`` setting takes (N: a percentage, 0 < N < 100)."""

_PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)
_PRUNE = re.compile(r"prune-(?P<n>[^-]*)(?P<ft>-ft)?")
_ZLIB_LEVEL = 9
_HELP = (
    "Use one of: none, int8, prune-N (N% of the weights zeroed, 0 < N < 100, e.g. prune-50), "
    "prune-N-ft (pruned, then fine-tuned with the zeros kept)."
)


@dataclass(frozen=True, slots=True)
class CompressionSetting:
    """A parsed ``compression`` setting.

    Attributes:
        setting: The setting as written, e.g. ``"prune-50-ft"``.
        kind: ``"none"``, ``"prune"`` or ``"int8"``.
        amount: Fraction of weights to zero (pruning), else 0.
        finetune: Whether the pruned model is fine-tuned afterwards.
    """

    setting: str
    kind: CompressionKind
    amount: float = 0.0
    finetune: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class Compressed:
    """A compressed model and what compressing it did, measured.

    Attributes:
        model: The compressed model; it takes and returns what the original did, so
            ``payoff.train.predict`` and ``payoff.returns.measure_inference`` run on it.
        baseline: The uncompressed model in the same runtime, for a like-for-like
            latency comparison: the original for ``none``/``prune``, its fp32 ONNX export
            run by ONNX Runtime for ``int8``.
        setting: The setting, e.g. ``"prune-50"``.
        method: How the model was compressed, in words.
        runtime: ``"torch"`` or ``"onnxruntime"``: what runs ``model``.
        sparsity: Fraction of Linear/Conv weights that are exactly zero in ``model``
            (for ``int8``: in the fp32 weights it was quantised from).
        n_params: Parameters of the original model.
        n_params_nonzero: Of those, the ones not zero after compression.
        size_bytes: Serialised size of ``model``, measured as ``size_method`` says.
        size_bytes_before: Serialised size of the original, measured the same way.
        size_method: How both sizes were measured.
        finetuned: Whether the pruned model was fine-tuned.
    """

    model: nn.Module
    baseline: nn.Module
    setting: str
    method: str
    runtime: Literal["torch", "onnxruntime"]
    sparsity: float
    n_params: int
    n_params_nonzero: int
    size_bytes: int
    size_bytes_before: int
    size_method: str
    finetuned: bool

    @property
    def size_ratio(self) -> float:
        """Return ``size_bytes / size_bytes_before`` (below 1: smaller)."""
        return self.size_bytes / self.size_bytes_before


@dataclass(frozen=True, slots=True)
class CompressionReading:
    """A compressed model's returns beside its baseline's, measured on the same rows.

    Attributes:
        compressed: What ``compress`` returned.
        metrics_before: Every metric of the baseline on the rows.
        metrics_after: Every metric of the compressed model on the same rows.
        inference_before: The baseline's latency, throughput and ``torch.save`` size.
        inference_after: The compressed model's; its ``size_bytes`` is a dense
            ``torch.save`` and ignores zeros: use ``compressed.size_bytes``.
    """

    compressed: Compressed
    metrics_before: dict[str, float]
    metrics_after: dict[str, float]
    inference_before: InferenceReading
    inference_after: InferenceReading

    def change(self, metric: str) -> float:
        """Return the metric after minus before (negative: compression cost quality)."""
        return self.metrics_after[metric] - self.metrics_before[metric]


def _bad(setting: str, why: str) -> ConfigError:
    return ConfigError(f"compression {setting!r}: {why} {_HELP}")


def parse_compression(setting: str) -> CompressionSetting:
    """Parse a ``compression`` setting, so a typo fails before any training is paid for.

    Raises:
        ConfigError: not a string, an unknown form (``"int4"``), or a percentage outside
            0 < N < 100 (``"prune-150"``); the message says what is accepted.
    """
    if not isinstance(setting, str):
        raise ConfigError(
            f"compression must be a string such as 'none', 'int8' or 'prune-50', got "
            f"{setting!r} ({type(setting).__name__}). {_HELP}"
        )
    if setting == "none":
        return CompressionSetting("none", "none")
    if setting == "int8":
        return CompressionSetting("int8", "int8")
    match = _PRUNE.fullmatch(setting)
    if match is None and setting.startswith("prune"):
        raise _bad(setting, "a pruning setting is 'prune-N' or 'prune-N-ft', N a percentage.")
    if match is None:
        known = ["none", "int8", "prune-50"]
        close = difflib.get_close_matches(setting.lower(), known, n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise _bad(setting, f"unknown setting.{hint}")
    text = match["n"]
    try:
        percent = float(text)
    except ValueError:
        raise _bad(
            setting, f"N must be a percentage of the weights to zero, got {text!r}."
        ) from None
    if not math.isfinite(percent) or not 0 < percent < 100:
        raise _bad(
            setting,
            f"N must be between 0 and 100 (exclusive), got {text}; for no pruning use 'none'.",
        )
    return CompressionSetting(setting, "prune", percent / 100, match["ft"] is not None)


def _prunable(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, _PRUNABLE)]


def _weight_counts(model: nn.Module) -> tuple[int, int]:
    """Return (weights, zero weights) over the model's Linear/Conv layers."""
    total = zeros = 0
    for layer in _prunable(model):
        weight = layer.weight.detach()
        total += weight.numel()
        zeros += int((weight == 0).sum())
    return total, zeros


def _n_params(model: nn.Module) -> int:
    return int(sum(p.numel() for p in model.parameters()))


def _n_nonzero(model: nn.Module) -> int:
    return int(sum(int((p.detach() != 0).sum()) for p in model.parameters()))


def _zlib_state_bytes(model: nn.Module) -> int:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return len(zlib.compress(buffer.getvalue(), _ZLIB_LEVEL))


def _plain_state_bytes(model: nn.Module) -> int:
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return len(buffer.getbuffer())


def _layers(n: int, kind: str) -> str:
    return f"{n} {kind} layer{'' if n == 1 else 's'}"


def _layer_names(layers: list[nn.Module]) -> str:
    n_linear = sum(isinstance(layer, nn.Linear) for layer in layers)
    parts = [(n_linear, "Linear"), (len(layers) - n_linear, "Conv")]
    return " and ".join(_layers(n, kind) for n, kind in parts if n)


def _n_features(model: nn.Module) -> int:
    for layer in model.modules():
        if isinstance(layer, nn.Linear):
            return layer.in_features
        if isinstance(layer, nn.Unflatten):
            return int(np.prod(layer.unflattened_size))  # type: ignore[arg-type]
    raise ConfigError(
        "cannot tell the input width of this model (its first layer is neither Linear nor "
        "Unflatten); pass n_features to compress()."
    )


def _prune(
    original: nn.Module,
    spec: CompressionSetting,
    scope: PruneScope,
    finetune: Callable[[nn.Module], nn.Module] | None,
) -> Compressed:
    model = copy.deepcopy(original)
    layers = _prunable(model)
    if not layers:
        raise ConfigError(
            f"compression {spec.setting!r} prunes Linear and Conv weights, and this model "
            "has none."
        )
    if scope == "global":
        # One magnitude threshold over all layers: small layers may lose more than N%.
        prune.global_unstructured(
            [(layer, "weight") for layer in layers],
            pruning_method=prune.L1Unstructured,
            amount=spec.amount,
        )
        how = "one threshold over all layers (global)"
    else:
        for layer in layers:
            prune.l1_unstructured(layer, "weight", amount=spec.amount)
        how = "in each layer"
    finetuned = finetune is not None
    if finetune is not None:
        # The pruning hooks stay on while fine-tuning: the forward pass multiplies
        # weight_orig by the fixed mask, so zeroed weights get no gradient and stay zero.
        tuned = finetune(model)
        if tuned is not model:
            raise ConfigError(
                "the finetune callback must train and return the model it was given (with "
                "its pruning masks), not a new one."
            )
    for layer in layers:
        prune.remove(layer, "weight")
    total, zeros = _weight_counts(model)
    method = (
        f"{spec.setting}: L1 magnitude pruning (torch.nn.utils.prune), the "
        f"{spec.amount * 100:g}% of weights with the smallest |w| set to zero {how}, over "
        f"{_layer_names(layers)} (biases kept), made permanent"
    )
    if finetuned:
        method += "; then fine-tuned with the pruning mask fixed"
    return Compressed(
        model=model,
        baseline=original,
        setting=spec.setting,
        method=method,
        runtime="torch",
        sparsity=zeros / total,
        n_params=_n_params(original),
        n_params_nonzero=_n_nonzero(model),
        size_bytes=_zlib_state_bytes(model),
        size_bytes_before=_zlib_state_bytes(original),
        size_method=(
            f"zlib level {_ZLIB_LEVEL} of torch.save(state_dict): zeros compress, so the "
            "pruned size shows what sparsity saves; the original is measured the same way"
        ),
        finetuned=finetuned,
    )


def _int8(original: nn.Module, spec: CompressionSetting, n_features: int | None) -> Compressed:
    from payoff.serve._quantize import OnnxModule, export_onnx, quantize_int8

    cpu = copy.deepcopy(original).cpu()
    fp32 = export_onnx(cpu, n_features if n_features is not None else _n_features(cpu))
    int8 = quantize_int8(fp32)
    layers = _prunable(cpu)
    n_linear = sum(isinstance(layer, nn.Linear) for layer in layers)
    n_conv = len(layers) - n_linear
    total, zeros = _weight_counts(cpu)
    method = (
        f"int8: ONNX Runtime dynamic quantisation (onnxruntime.quantization.quantize_dynamic) "
        f"of {_layers(n_linear, 'Linear')}: 8-bit weights (uint8, a scale and zero point per "
        "output channel), activations quantised to uint8 on each call, int32 accumulation"
    )
    if n_conv:
        method += f"; {_layers(n_conv, 'Conv')} kept fp32"
    method += "; runs in ONNX Runtime (CPU), compare it with its fp32 ONNX export (baseline)"
    return Compressed(
        model=OnnxModule(int8),
        baseline=OnnxModule(fp32),
        setting=spec.setting,
        method=method,
        runtime="onnxruntime",
        sparsity=zeros / total if total else 0.0,
        n_params=_n_params(original),
        n_params_nonzero=_n_nonzero(original),
        size_bytes=len(int8),
        size_bytes_before=len(fp32),
        size_method=(
            "bytes of the serialised ONNX model (8-bit weights, their scales and zero points, "
            "fp32 biases and graph); the original is its fp32 ONNX export"
        ),
        finetuned=False,
    )


def compress(
    model: nn.Module,
    setting: str,
    *,
    finetune: Callable[[nn.Module], nn.Module] | None = None,
    scope: PruneScope = "layer",
    n_features: int | None = None,
) -> Compressed:
    """Compress a trained model as ``setting`` says; ``model`` itself is left unchanged.

    Args:
        model: The trained model, mapping ``(batch, n_features)`` float32 to outputs.
        setting: ``"none"``, ``"int8"``, ``"prune-N"`` or ``"prune-N-ft"``.
        finetune: Trains the pruned model in place and returns it (``finetuner`` builds
            one). ``prune-N-ft`` needs it; with ``prune-N`` it fine-tunes too.
        scope: ``"layer"`` zeroes N% of each layer (no layer can be pruned away);
            ``"global"`` zeroes the N% smallest weights of the whole model.
        n_features: Input width, for the ONNX export of ``int8`` [default: read from the
            first Linear or Unflatten layer].

    Raises:
        ConfigError: a bad setting, ``prune-N-ft`` without ``finetune``, a ``finetune``
            with ``none``/``int8``, or a model without layers the setting compresses.
    """
    spec = parse_compression(setting)
    if scope not in ("layer", "global"):
        raise ConfigError(f"scope must be 'layer' or 'global', got {scope!r}.")
    if spec.kind != "prune" and finetune is not None:
        raise ConfigError(
            f"compression {setting!r} does not fine-tune; a finetune callback applies to "
            "prune-N and prune-N-ft only."
        )
    if spec.finetune and finetune is None:
        raise ConfigError(
            f"compression {setting!r} fine-tunes the pruned model, so it needs a finetune "
            "callback (payoff.train.finetuner(X, y, kind=...) builds one)."
        )
    if spec.kind == "prune":
        return _prune(model, spec, scope, finetune)
    if spec.kind == "int8":
        return _int8(model, spec, n_features)
    total, zeros = _weight_counts(model)
    size = _plain_state_bytes(model)
    return Compressed(
        model=model,
        baseline=model,
        setting="none",
        method="none: the trained fp32 model, unchanged",
        runtime="torch",
        sparsity=zeros / total if total else 0.0,
        n_params=_n_params(model),
        n_params_nonzero=_n_nonzero(model),
        size_bytes=size,
        size_bytes_before=size,
        size_method="torch.save(state_dict)",
        finetuned=False,
    )


def finetuner(
    X: np.ndarray,
    y: np.ndarray,
    *,
    kind: str,
    epochs: int = 2,
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
) -> Callable[[nn.Module], nn.Module]:
    """Return a fine-tune callback for ``compress``: ``epochs`` of Adam on ``(X, y)``.

    A pruned model loses some accuracy; a few epochs at a small learning rate on the
    training rows win most of it back while the pruning mask keeps the zeros.

    Args:
        X: Training rows, ``(n, n_features)``.
        y: Class indices (classification) or targets (regression).
        kind: ``"classification"`` (cross-entropy) or ``"regression"`` (MSE).
    """
    if kind not in ("classification", "regression"):
        raise ConfigError(f"kind must be 'classification' or 'regression', got {kind!r}.")
    for arg, value in (("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{arg} must be an integer >= 1, got {value!r}.")
    if len(X) == 0 or len(X) != len(y):
        raise ConfigError(f"X and y must be non-empty and of one length, got {len(X)}, {len(y)}.")

    def run(model: nn.Module) -> nn.Module:
        first = next(model.parameters())
        rows = torch.as_tensor(np.ascontiguousarray(X, np.float32), device=first.device)
        if kind == "classification":
            target = torch.as_tensor(np.asarray(y), dtype=torch.long, device=first.device)
        else:
            target = torch.as_tensor(np.asarray(y), dtype=torch.float32, device=first.device)
        generator = torch.Generator().manual_seed(seed)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        was_training = model.training
        model.train()
        for _ in range(epochs):
            order = torch.randperm(len(rows), generator=generator).to(first.device)
            for start in range(0, len(rows), batch_size):
                idx = order[start : start + batch_size]
                optimizer.zero_grad(set_to_none=True)
                out = model(rows[idx])
                if kind == "classification":
                    loss = nn.functional.cross_entropy(out, target[idx])
                else:
                    loss = nn.functional.mse_loss(out[:, 0], target[idx])
                loss.backward()
                optimizer.step()
        model.train(was_training)
        return model

    return run


def measure_compression(
    compressed: Compressed,
    X: np.ndarray,
    y: np.ndarray,
    *,
    kind: str,
    n_latency: int = 100,
    batch_size: int = 256,
    n_rounds: int = 3,
) -> CompressionReading:
    """Measure the compressed model and its baseline on the same rows, in alternation.

    Both run in the same runtime (``compressed.baseline``), so a latency change is the
    compression's, not a change of runtime. The two are benchmarked in turn ``n_rounds``
    times and each keeps its median round (by p50 latency): a burst of load on a shared
    machine then lands on both, not on whichever ran second.
    """
    if isinstance(n_rounds, bool) or not isinstance(n_rounds, int) or n_rounds < 1:
        raise ConfigError(f"n_rounds must be an integer >= 1, got {n_rounds!r}.")

    def metrics(module: nn.Module) -> dict[str, float]:
        first = next(module.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
        rows = torch.as_tensor(np.ascontiguousarray(X, np.float32), device=device)
        return score(kind, y, predict(module, rows, kind))

    rounds: dict[str, list[InferenceReading]] = {"before": [], "after": []}
    for _ in range(n_rounds):
        for key, module in (("before", compressed.baseline), ("after", compressed.model)):
            reading = measure_inference(module, X, n_latency=n_latency, batch_size=batch_size)
            rounds[key].append(reading)

    def median(readings: list[InferenceReading]) -> InferenceReading:
        return sorted(readings, key=lambda r: r.latency_p50_s)[len(readings) // 2]

    return CompressionReading(
        compressed=compressed,
        metrics_before=metrics(compressed.baseline),
        metrics_after=metrics(compressed.model),
        inference_before=median(rounds["before"]),
        inference_after=median(rounds["after"]),
    )
