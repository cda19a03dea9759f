"""Model builders: linear, MLP and CNN, sized by preset or explicit widths.

torch is imported inside ``build_model`` so that ``import payoff.tasks`` (used by the
config layer to validate a study) stays light.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import TYPE_CHECKING

from payoff._errors import ConfigError

if TYPE_CHECKING:
    import torch

MODEL_FAMILIES: tuple[str, ...] = ("linear", "mlp", "cnn")
SIZE_PRESETS: tuple[str, ...] = ("small", "medium", "large")

# Hidden widths of the MLP's layers.
_MLP_PRESETS: dict[str, tuple[int, ...]] = {
    "small": (32,),
    "medium": (128,),
    "large": (256, 256),
}
# Output channels of the CNN's 3x3 conv blocks.
_CNN_PRESETS: dict[str, tuple[int, ...]] = {
    "small": (8,),
    "medium": (16, 32),
    "large": (32, 64),
}
_CNN_HEAD_WIDTH = 64


def _suggest(word: str, choices: Sequence[str]) -> str:
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f" Did you mean {match[0]!r}?" if match else ""


def _widths(family: str, size: str | Sequence[int]) -> tuple[int, ...]:
    presets = _MLP_PRESETS if family == "mlp" else _CNN_PRESETS
    if isinstance(size, str):
        if size not in presets:
            raise ConfigError(
                f"unknown model size {size!r}.{_suggest(size, SIZE_PRESETS)} "
                f"Use one of {', '.join(SIZE_PRESETS)} or a list of layer widths."
            )
        return presets[size]
    widths = tuple(size)
    if not widths or not all(
        isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in widths
    ):
        raise ConfigError(
            f"model size must be a preset ({', '.join(SIZE_PRESETS)}) or a non-empty list "
            f"of positive integer widths, got {size!r}."
        )
    return widths


def build_model(
    family: str,
    size: str | Sequence[int],
    *,
    n_features: int,
    n_outputs: int,
    image_shape: tuple[int, int, int] | None = None,
    dropout: float = 0.0,
) -> torch.nn.Module:
    """Build an untrained model that maps ``(batch, n_features)`` float32 to logits.

    Seed torch (``torch.manual_seed``) before calling for reproducible weights.

    Args:
        family: ``"linear"`` (one ``nn.Linear``: logistic or linear regression; ``size``
            is ignored), ``"mlp"`` or ``"cnn"``.
        size: ``"small"``, ``"medium"``, ``"large"``, or explicit widths: hidden units
            per layer for the MLP, output channels per 3x3 conv block for the CNN.
        n_features: Width of the flat input rows.
        n_outputs: Number of outputs: classes, or 1 for regression.
        image_shape: ``(channels, height, width)``; the CNN reshapes rows to it.
        dropout: Dropout probability after each hidden layer, in [0, 1).

    Returns:
        A ``torch.nn.Sequential`` with output shape ``(batch, n_outputs)``.

    Raises:
        ConfigError: unknown family or size, bad widths, or a CNN without a matching
            ``image_shape``.
    """
    if family not in MODEL_FAMILIES:
        raise ConfigError(
            f"unknown model family {family!r}.{_suggest(family, MODEL_FAMILIES)} "
            f"Use one of {', '.join(MODEL_FAMILIES)}."
        )
    for arg, value in (("n_features", n_features), ("n_outputs", n_outputs)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"{arg} must be an integer >= 1, got {value!r}.")
    if isinstance(dropout, bool) or not isinstance(dropout, int | float) or not 0 <= dropout < 1:
        raise ConfigError(f"dropout must be in [0, 1), got {dropout!r}.")

    if family == "cnn":
        if image_shape is None:
            raise ConfigError(
                "model family 'cnn' needs rows that are images, and this task has no "
                "image_shape. Use model: mlp (or linear) for tabular data."
            )
        shape = tuple(image_shape)
        if (
            len(shape) != 3
            or not all(isinstance(s, int) and s >= 1 for s in shape)
            or shape[0] * shape[1] * shape[2] != n_features
        ):
            raise ConfigError(
                f"image_shape {image_shape!r} must be (channels, height, width) with "
                f"channels*height*width == n_features ({n_features})."
            )
        channels, height, width = shape
        return _cnn(_widths(family, size), (channels, height, width), n_outputs, dropout)

    import torch.nn as nn

    if family == "linear":
        return nn.Sequential(nn.Linear(n_features, n_outputs))
    layers: list[nn.Module] = []
    width_in = n_features
    for width in _widths(family, size):
        layers += [nn.Linear(width_in, width), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
        width_in = width
    layers.append(nn.Linear(width_in, n_outputs))
    return nn.Sequential(*layers)


def _cnn(
    channels: tuple[int, ...],
    image_shape: tuple[int, int, int],
    n_outputs: int,
    dropout: float,
) -> torch.nn.Module:
    import torch.nn as nn

    c_in, height, width = image_shape
    layers: list[nn.Module] = [nn.Unflatten(1, image_shape)]
    for c_out in channels:
        layers += [nn.Conv2d(c_in, c_out, kernel_size=3, padding=1), nn.ReLU()]
        # Halve the resolution while there is any left to halve.
        if height >= 2 and width >= 2:
            layers.append(nn.MaxPool2d(2))
            height, width = height // 2, width // 2
        c_in = c_out
    layers += [nn.Flatten(), nn.Linear(c_in * height * width, _CNN_HEAD_WIDTH), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    layers.append(nn.Linear(_CNN_HEAD_WIDTH, n_outputs))
    return nn.Sequential(*layers)
